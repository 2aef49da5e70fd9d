/**
 * A pipeline folder on disk as `PipelineFiles`: every regular file under it by
 * relative path. Symbolic links are followed (the Hugging Face cache links every file
 * of a snapshot to its blob), a linked folder only once; a pipe, socket or device
 * inside the folder is refused, since it cannot be read or carried over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import type { PipelineFiles } from '../layout.js';

export interface FolderFiles extends PipelineFiles {
  /** The folder as given, resolved. */
  readonly root: string;
  /** Absolute path of a relative one. */
  absolute(relative: string): string;
}

export function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function openPipelineFolder(dir: string): FolderFiles {
  const root = path.resolve(dir);
  let rootStat: fs.Stats;
  try {
    rootStat = fs.statSync(root);
  } catch {
    throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `pipeline folder "${dir}" does not exist`);
  }
  if (!rootStat.isDirectory()) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `"${dir}" is not a folder`);
  const files = new Map<string, number>();
  const visited = new Set<string>();
  const walk = (abs: string, rel: string) => {
    let real: string;
    try {
      real = fs.realpathSync(abs);
    } catch (e) {
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${abs}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (visited.has(real)) return;
    visited.add(real);
    let entries: string[];
    try {
      entries = fs.readdirSync(abs).sort();
    } catch (e) {
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot list "${abs}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const name of entries) {
      const childAbs = path.join(abs, name);
      const childRel = rel ? `${rel}/${name}` : name;
      let st: fs.Stats;
      try {
        st = fs.statSync(childAbs);
      } catch (e) {
        throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${childAbs}" (a broken link?): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      if (st.isDirectory()) walk(childAbs, childRel);
      else if (st.isFile()) files.set(childRel, st.size);
      else throw new DeltacError('DELTAC_E_FILE_READ', `"${childAbs}" is not a regular file (a pipe, socket or device); a pipeline folder holds files`);
    }
  };
  walk(root, '');
  return {
    root,
    label: dir,
    files,
    absolute: (relative) => path.join(root, ...relative.split('/')),
    async readText(relative) {
      try {
        return fs.readFileSync(path.join(root, ...relative.split('/')), 'utf8');
      } catch (e) {
        throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${path.join(dir, relative)}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    },
  };
}
