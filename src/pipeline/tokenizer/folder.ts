/**
 * A tokenizer folder's files → a `ClipTokenizer`: `tokenizer.json` when the folder has
 * one (as transformers prefers it), else `vocab.json` + `merges.txt`;
 * `tokenizer_config.json` and `special_tokens_map.json` when present. A folder with
 * neither form is DELTAC_E_TOKENIZER. Node-free: the caller reads the files (from disk in
 * `load.ts`, from a picked folder in the browser).
 */
import { DeltacError } from '../../ir/errors.js';
import { ClipTokenizer, type TokenizerConfig } from './clip.js';

/** The files a tokenizer folder may hold that deltac reads. */
export const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/**
 * `read(name)` gives a file's text, or undefined when the folder has no such file;
 * `label` names the folder in messages; `listing` (for the message when neither form is
 * there) lists what the folder holds.
 */
export function tokenizerFromFolder(read: (name: string) => string | undefined, label: string, listing: () => string[]): ClipTokenizer {
  const where = (name: string) => `${label.replace(/[\\/]+$/, '')}/${name}`;
  const json = (name: string, text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new DeltacError('DELTAC_E_TOKENIZER', `${where(name)} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const object = (name: string): TokenizerConfig | undefined => {
    const text = read(name);
    if (text === undefined) return undefined;
    const value = json(name, text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DeltacError('DELTAC_E_TOKENIZER', `${where(name)} is not a JSON object`);
    }
    return value as TokenizerConfig;
  };
  const config = object('tokenizer_config.json') ?? {};
  const specialTokensMap = object('special_tokens_map.json');
  const tokenizerJson = read('tokenizer.json');
  if (tokenizerJson !== undefined) return ClipTokenizer.fromTokenizerJson(json('tokenizer.json', tokenizerJson), config, specialTokensMap);
  const vocab = read('vocab.json');
  const merges = vocab === undefined ? undefined : read('merges.txt');
  if (vocab !== undefined && merges !== undefined) return ClipTokenizer.fromVocabAndMerges(json('vocab.json', vocab), merges, config, specialTokensMap);
  throw new DeltacError(
    'DELTAC_E_TOKENIZER',
    `tokenizer folder ${label} has neither tokenizer.json nor vocab.json + merges.txt (it has: ${listing().sort().join(', ') || 'nothing'})`,
  );
}
