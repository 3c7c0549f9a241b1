// The worker's workflow bundle entry point: every workflow type the workers serve.
export { pipeline } from './pipeline';
export { prepareCorpus } from './prepare-corpus';
export { pretrain } from './pretrain';
