/** Tokenizers for corpus preparation: load an HF tokenizer.json, or train a WordPiece vocabulary. */
export { type CorpusTokenizer, loadTokenizer } from './load';
export { type TrainTokenizerOptions, trainWordPieceTokenizer } from './train';
