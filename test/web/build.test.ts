/**
 * The page's build (examples/web/build.ts) reuses its outputs only while they are newer than
 * every source: the model, its weights, and deltac's own code (a folder counts through the
 * newest file anywhere below it), so a change to a kernel generator is never tested through
 * a stale host module.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { upToDate } from '../../examples/web/build.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-web-build-');
afterAll(tmp.cleanup);

const touch = (file: string, seconds: number) => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, '');
  fs.utimesSync(file, seconds, seconds);
};

describe('examples/web build: when outputs are reused', () => {
  it('an output is stale when any file under a source folder is newer, or when it is missing', () => {
    const out = path.join(tmp.dir, 'out.js');
    const model = path.join(tmp.dir, 'model.onnx');
    const src = path.join(tmp.dir, 'src');
    const deep = path.join(src, 'codegen', 'host', 'webgpu-host.ts');
    expect(upToDate(out, [model])).toBe(false);
    touch(model, 1000);
    touch(path.join(src, 'index.ts'), 1000);
    touch(deep, 1000);
    touch(out, 2000);
    expect(upToDate(out, [model, src])).toBe(true);
    touch(deep, 3000);
    expect(upToDate(out, [model, src])).toBe(false);
    expect(upToDate(out, [model])).toBe(true);
  });
});
