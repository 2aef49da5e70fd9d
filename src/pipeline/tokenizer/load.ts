/**
 * Reading a pipeline's `tokenizer/` folder from disk (Node side; `folder.ts` makes the
 * tokenizer from its files, as the browser does from a picked folder).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import type { ClipTokenizer } from './clip.js';
import { tokenizerFromFolder } from './folder.js';

export function loadTokenizer(dir: string): ClipTokenizer {
  let found: string[];
  try {
    found = fs.readdirSync(dir);
  } catch {
    throw new DeltacError('DELTAC_E_TOKENIZER', `tokenizer folder ${dir} does not exist or is not a folder`);
  }
  const read = (name: string): string | undefined => {
    const file = path.join(dir, name);
    try {
      if (!fs.statSync(file).isFile()) return undefined;
    } catch {
      return undefined;
    }
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read ${file}: ${(e as Error).message}`);
    }
  };
  return tokenizerFromFolder(read, dir, () => found);
}
