/**
 * External data: safe resolution of `location` entries against the model folder,
 * and lazy, bounds-checked reads from the files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../ir/errors.js';
import type { ByteSource } from '../ir/tensor.js';

/**
 * Resolves an external-data `location` inside `baseDir`, refusing absolute paths,
 * `..` segments, and anything (symlinks included) that lands outside the folder.
 * Returns the absolute path; does not require the file to exist.
 */
export function resolveExternalLocation(baseDir: string, location: string, tensorName: string): string {
  const bad = (why: string) =>
    new DeltacError(
      'DELTAC_E_EXTERNAL_PATH',
      `external data of tensor "${tensorName}" has location "${location}", which ${why}; external files must sit inside the model's folder`,
      { tensor: tensorName, location },
    );
  if (location === '' || location.includes('\0')) throw bad('is empty or contains a NUL byte');
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || /^[a-zA-Z]:/.test(location)) {
    throw bad('is an absolute path');
  }
  const segments = location.split(/[\\/]+/);
  if (segments.includes('..')) throw bad('contains ".."');
  const base = realpathOrSelf(baseDir);
  const full = path.resolve(base, location);
  if (!isWithin(base, full)) throw bad('points outside the model folder');
  let real: string | undefined;
  try {
    real = fs.realpathSync(full);
  } catch {
    // Missing (or a dangling link): reported when its data is needed.
  }
  if (real !== undefined && !isWithin(base, real)) throw bad(`is a symlink that resolves to "${real}", outside the model folder`);
  return full;
}

function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

function isWithin(base: string, p: string): boolean {
  const rel = path.relative(base, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** A file of external data, read on demand (opened per read: no descriptor is held). */
export class FileByteSource implements ByteSource {
  readonly description: string;
  readonly path: string;
  private cachedSize: number | undefined;

  constructor(absPath: string, description: string) {
    this.path = absPath;
    this.description = description;
  }

  exists(): boolean {
    return fs.existsSync(this.path);
  }

  size(): number {
    if (this.cachedSize === undefined) {
      let st: fs.Stats;
      try {
        st = fs.statSync(this.path);
      } catch {
        throw new DeltacError(
          'DELTAC_E_EXTERNAL_MISSING',
          `external data file "${this.description}" does not exist (looked for ${this.path}); copy it next to the model`,
        );
      }
      // A directory, FIFO or device would fail (or block) on read: only plain files hold data.
      if (!st.isFile()) {
        throw new DeltacError(
          'DELTAC_E_FILE_READ',
          `external data "${this.description}" (${this.path}) is not a regular file; point "location" at the data file`,
        );
      }
      this.cachedSize = st.size;
    }
    return this.cachedSize;
  }

  read(offset: number, length: number): Uint8Array {
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0) || offset + length > this.size()) {
      throw new DeltacError(
        'DELTAC_E_EXTERNAL_RANGE',
        `external data range [${offset}, ${offset + length}) is past the end of "${this.description}" (${this.size()} bytes)`,
      );
    }
    const out = Buffer.allocUnsafe(length);
    try {
      const fd = fs.openSync(this.path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw new DeltacError('DELTAC_E_EXTERNAL_RANGE', `unexpected end of "${this.description}" (did the file change?)`);
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      if (e instanceof DeltacError) throw e;
      throw new DeltacError('DELTAC_E_FILE_READ', `cannot read external data "${this.description}": ${(e as Error).message}`);
    }
    return out;
  }
}

/** Shares one FileByteSource per file among all tensors of a model. */
export class ExternalFiles {
  private readonly byPath = new Map<string, FileByteSource>();
  constructor(readonly baseDir: string) {}

  get(location: string, tensorName: string): FileByteSource {
    const abs = resolveExternalLocation(this.baseDir, location, tensorName);
    let src = this.byPath.get(abs);
    if (!src) {
      src = new FileByteSource(abs, location);
      this.byPath.set(abs, src);
    }
    return src;
  }

  files(): FileByteSource[] {
    return [...this.byPath.values()];
  }
}
