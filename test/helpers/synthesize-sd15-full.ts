/**
 * The sd15-full fixture ships only its graph (`model.graph.onnx`); its 384
 * external-data files (3.44 GB of fp32 weights) are created here with seeded
 * random data, once, and cached under `bench/cache/sd15-full/seed-<seed>-v<N>/`
 * (gitignored). Tests and benchmarks share the cache.
 *
 * The data is deterministic (a function of the seed and each tensor's name), so
 * two machines synthesize identical files. Values are uniform in ±1/sqrt(fan),
 * norm scales ≈ 1, small biases: finite numbers a UNet can run on without
 * overflowing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType } from '../../src/ir/dtype.js';
import { float32ToHalfArray } from '../../src/ir/half.js';
import { loadModelWithReport } from '../../src/onnx/load.js';
import { CACHE_DIR, modelPath } from './paths.js';
import { fnv1a } from './random.js';

export const SD15_FULL_SEED = 20250101;
/** Bump when the generator changes, so stale caches are not reused. */
const GENERATOR_VERSION = 1;
const MANIFEST = 'synthesized.json';
const CHUNK_ELEMENTS = 4 * 2 ** 20;

export interface SynthesizedFile {
  location: string;
  bytes: number;
}

interface Manifest {
  seed: number;
  generator: number;
  files: SynthesizedFile[];
}

/**
 * Returns a folder holding `model.graph.onnx` and every external-data file it
 * references, synthesizing them on first use (~10–30 s, 3.44 GB of disk).
 */
export async function ensureSd15FullWeights(seed = SD15_FULL_SEED): Promise<string> {
  const root = path.join(CACHE_DIR, 'sd15-full');
  const dir = path.join(root, `seed-${seed}-v${GENERATOR_VERSION}`);
  if (isComplete(dir, seed)) return dir;
  fs.mkdirSync(root, { recursive: true });
  fs.rmSync(dir, { recursive: true, force: true });
  const tmp = fs.mkdtempSync(path.join(root, '.tmp-'));
  try {
    synthesizeInto(tmp, seed);
    fs.chmodSync(tmp, 0o755); // mkdtemp made it private
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      // Another process finished first: use its copy.
      if (!isComplete(dir, seed)) throw e;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!isComplete(dir, seed)) throw new Error(`synthesized sd15-full weights in ${dir} are incomplete`);
  return dir;
}

/** The external-data files sd15-full's graph references, with the sizes they must have. */
export function sd15FullExternalFiles(): SynthesizedFile[] {
  const { model } = loadModelWithReport(modelPath('sd15-full', 'model.graph.onnx'), {
    missingExternalData: 'warn',
    verify: false,
  });
  const sizes = new Map<string, number>();
  for (const v of model.graph.initializers.values()) {
    const s = v.initializer!.storage;
    if (s.kind !== 'external') continue;
    sizes.set(s.location, Math.max(sizes.get(s.location) ?? 0, s.offset + s.length));
  }
  return [...sizes].map(([location, bytes]) => ({ location, bytes }));
}

function isComplete(dir: string, seed: number): boolean {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return false;
  }
  if (manifest.seed !== seed || manifest.generator !== GENERATOR_VERSION) return false;
  // the cached graph must still be the shared fixture's (a new fixture invalidates the cache)
  try {
    const cached = fs.readFileSync(path.join(dir, 'model.graph.onnx'));
    if (!cached.equals(fs.readFileSync(modelPath('sd15-full', 'model.graph.onnx')))) return false;
  } catch {
    return false;
  }
  return manifest.files.every((f) => {
    try {
      return fs.statSync(path.join(dir, f.location)).size === f.bytes;
    } catch {
      return false;
    }
  });
}

function synthesizeInto(dir: string, seed: number): void {
  const graphFile = modelPath('sd15-full', 'model.graph.onnx');
  fs.copyFileSync(graphFile, path.join(dir, 'model.graph.onnx'));
  fs.chmodSync(path.join(dir, 'model.graph.onnx'), 0o644);
  const { model } = loadModelWithReport(graphFile, { missingExternalData: 'warn', verify: false });
  const files = new Map<string, { bytes: number; tensors: { name: string; dims: number[]; offset: number; length: number }[] }>();
  for (const v of model.graph.initializers.values()) {
    const t = v.initializer!;
    const s = t.storage;
    if (s.kind !== 'external') continue;
    if (t.dtype !== 1) throw new Error(`sd15-full tensor ${v.name} is not fp32; the synthesizer only writes fp32`);
    const f = files.get(s.location) ?? { bytes: 0, tensors: [] };
    f.tensors.push({ name: v.name, dims: t.dims, offset: s.offset, length: s.length });
    f.bytes = Math.max(f.bytes, s.offset + s.length);
    files.set(s.location, f);
  }
  for (const [location, f] of files) {
    const fd = fs.openSync(path.join(dir, location), 'w');
    try {
      fs.ftruncateSync(fd, f.bytes);
      for (const t of f.tensors) writeSeededTensor(fd, t, seed);
    } finally {
      fs.closeSync(fd);
    }
  }
  const manifest: Manifest = {
    seed,
    generator: GENERATOR_VERSION,
    files: [...files].map(([location, f]) => ({ location, bytes: f.bytes })),
  };
  fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify(manifest, null, 1));
}

/**
 * Writes tensor `t`'s seeded values (f32 or f16, little-endian) at `t.offset` of a
 * file descriptor, or into `target.bytes`: a function of the seed and the tensor's
 * name only.
 */
export function writeSeededTensor(
  target: number | { bytes: Uint8Array },
  t: { name: string; dims: number[]; offset: number; length: number; dtype?: DataType },
  seed: number,
): void {
  const f16 = t.dtype === DataType.FLOAT16;
  if (t.dtype !== undefined && t.dtype !== DataType.FLOAT && !f16) throw new Error(`tensor ${t.name}: the synthesizer writes fp32 and fp16 only`);
  const size = f16 ? 2 : 4;
  const count = t.length / size;
  const { center, scale } = valueRange(t.name, t.dims);
  const buffer = new Float32Array(Math.min(CHUNK_ELEMENTS, count));
  const half = f16 ? new Uint16Array(buffer.length) : undefined;
  // xorshift32, seeded per tensor (never 0).
  let x = (fnv1a(t.name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0 || 0x1234567;
  let done = 0;
  while (done < count) {
    const n = Math.min(buffer.length, count - done);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      buffer[i] = center + scale * ((x >>> 0) * 4.656612873077393e-10 - 1); // [-1, 1)
    }
    const bytes = half ? new Uint8Array(float32ToHalfArray(buffer, half).buffer, 0, n * 2) : new Uint8Array(buffer.buffer, 0, n * 4);
    const at = t.offset + done * size;
    if (typeof target === 'number') {
      let written = 0;
      while (written < bytes.length) written += fs.writeSync(target, bytes, written, bytes.length - written, at + written);
    } else target.bytes.set(bytes, at);
    done += n;
  }
}

/** Norm scales near 1, biases near 0, weights ±1/sqrt(fan) (fan: the larger side). */
function valueRange(name: string, dims: number[]): { center: number; scale: number } {
  if (dims.length <= 1) {
    const isNormScale = /norm/i.test(name) && name.endsWith('.weight');
    return isNormScale ? { center: 1, scale: 0.05 } : { center: 0, scale: 0.02 };
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const fan = Math.max(dims[0]!, count / dims[0]!);
  return { center: 0, scale: 1 / Math.sqrt(fan) };
}

