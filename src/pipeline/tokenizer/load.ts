/**
 * Reading a pipeline's `tokenizer/` folder (Node side; the tokenizer itself is Node-free):
 * `tokenizer.json` when the folder has one (as transformers prefers it), else
 * `vocab.json` + `merges.txt`; `tokenizer_config.json` and `special_tokens_map.json` when
 * present. A folder with neither is DELTAC_E_TOKENIZER.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import { ClipTokenizer, type TokenizerConfig } from './clip.js';

export function loadTokenizer(dir: string): ClipTokenizer {
  const file = (name: string) => path.join(dir, name);
  const has = (name: string) => {
    try {
      return fs.statSync(file(name)).isFile();
    } catch {
      return false;
    }
  };
  const text = (name: string) => {
    try {
      return fs.readFileSync(file(name), 'utf8');
    } catch (e) {
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read ${file(name)}: ${(e as Error).message}`);
    }
  };
  const json = (name: string): unknown => {
    try {
      return JSON.parse(text(name));
    } catch (e) {
      if (e instanceof DeltacError) throw e;
      throw new DeltacError('DELTAC_E_TOKENIZER', `${file(name)} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const object = (name: string): TokenizerConfig | undefined => {
    if (!has(name)) return undefined;
    const value = json(name);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DeltacError('DELTAC_E_TOKENIZER', `${file(name)} is not a JSON object`);
    }
    return value as TokenizerConfig;
  };

  const config = object('tokenizer_config.json') ?? {};
  const specialTokensMap = object('special_tokens_map.json');
  if (has('tokenizer.json')) return ClipTokenizer.fromTokenizerJson(json('tokenizer.json'), config, specialTokensMap);
  if (has('vocab.json') && has('merges.txt')) {
    return ClipTokenizer.fromVocabAndMerges(json('vocab.json'), text('merges.txt'), config, specialTokensMap);
  }
  let found: string[];
  try {
    found = fs.readdirSync(dir);
  } catch {
    throw new DeltacError('DELTAC_E_TOKENIZER', `tokenizer folder ${dir} does not exist or is not a folder`);
  }
  throw new DeltacError(
    'DELTAC_E_TOKENIZER',
    `tokenizer folder ${dir} has neither tokenizer.json nor vocab.json + merges.txt (it has: ${found.sort().join(', ') || 'nothing'})`,
  );
}
