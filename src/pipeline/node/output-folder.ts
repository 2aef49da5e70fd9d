/**
 * Folders written atomically: filled in a temporary folder beside the output
 * (`.<name>.deltac-XXXXXXXXXXXX`, same file system) and renamed into place when
 * complete. Used by `convert` on a pipeline folder and by `preview`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';

/** The real path of `p`, or of its nearest existing ancestor joined with the rest (for a path not yet created). */
export function realish(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(realish(parent), path.basename(abs));
  }
}

/** `child` is `parent` or lies under it (after resolving links). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(realish(parent), realish(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Refuses an output that is, lies in, or contains one of the input folders. */
export function refuseAroundInputs(output: string, inputs: string[]): void {
  for (const input of inputs) {
    const inside = isInside(output, input);
    if (inside || isInside(input, output)) {
      throw new DeltacError(
        'DELTAC_E_OUTPUT_EXISTS',
        `the output "${output}" ${inside ? (realish(output) === realish(input) ? 'is' : 'lies inside') : 'contains'} the input folder "${input}"; deltac never writes into its inputs: choose a folder outside it`,
      );
    }
  }
}

/** Creates the temporary folder for `output` (and the output's parents). */
export function makeTempFolder(output: string): string {
  const parent = path.dirname(path.resolve(output));
  try {
    fs.mkdirSync(parent, { recursive: true });
    // mkdir (not mkdtemp, which makes it 0700): the folder gets the umask's mode like any other
    const tmp = path.join(parent, `.${path.basename(output)}.deltac-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(tmp);
    return tmp;
  } catch (e) {
    throw new DeltacError('DELTAC_E_WRITE', `cannot write in "${parent}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Renames the finished folder into place; an existing output (`replaces`) is moved aside first and removed after. */
export function commitFolder(tmp: string, output: string, replaces: boolean): void {
  if (!replaces) {
    fs.renameSync(tmp, output);
    return;
  }
  const old = `${tmp}.old`;
  fs.renameSync(output, old);
  try {
    fs.renameSync(tmp, output);
  } catch (e) {
    fs.renameSync(old, output);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}
