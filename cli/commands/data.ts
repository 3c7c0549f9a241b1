/** `cotmae data import DIR`: publish a corpus directory to the artifact store. */
import { importDataset } from '../../lib/datasets/import';
import { defaultArtifactRoot } from '../../lib/settings';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';

export const dataSpec: CommandSpec = {
  name: 'data',
  usage: 'data import DIR [--to URI] [--name NAME]',
  summary: 'Upload a corpus directory as a dataset artifact (manifest with sha256 of every file).',
  options: { to: { type: 'string' }, name: { type: 'string' } },
  details: [
    '  --to URI     artifact root (default $COTMAE_ARTIFACTS or .state/artifacts); the dataset goes to datasets/NAME/',
    '  --name NAME  dataset name (default: the directory name)',
    'Prints the dataset URI; pass it to `cotmae run --corpus URI` or as corpus.source in the pipeline input.',
  ],
};

export async function dataCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(dataSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(dataSpec)}\n`);
    return 0;
  }
  if (positionals[0] !== 'import' || positionals.length !== 2)
    throw new UsageError('usage: data import DIR', helpText(dataSpec));
  const result = await importDataset(
    positionals[1] as string,
    (values.to as string | undefined) ?? defaultArtifactRoot(),
    values.name as string | undefined,
  );
  process.stderr.write(`imported ${result.files} files (${result.bytes} bytes, format ${result.format})\n`);
  process.stdout.write(`${result.uri}\n`);
  return 0;
}
