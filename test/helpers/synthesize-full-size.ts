/**
 * Full-size layouts (test/fixtures/full-size) with real bytes: the graph built
 * with elided weights, every weight then given seeded values in one external-data
 * file (`model.onnx_data`, as optimum exports SDXL; tensors under 1 KiB inline, as
 * torch's exporter keeps them), cached under
 * `bench/cache/full-size/<layout>-<style>-<dtype>-seed-<seed>-v<N>/` (gitignored).
 * SDXL base fp32 is 10.3 GB: synthesized once (about a minute), reused while the
 * fixture's graph is unchanged (a changed graph is rebuilt in place of the old one).
 *
 * Values come from synthesize-sd15-full's generator (per-tensor xorshift seeded by
 * the tensor's name, uniform in ±1/sqrt(fan)), so they do not depend on the order
 * in which tensors are written.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DataType } from '../../src/ir/dtype.js';
import { FileByteSource } from '../../src/onnx/external-data.js';
import { saveModel } from '../../src/onnx/save.js';
import { type BuiltFullSize, type FullSizeOptions, buildFullSize } from '../fixtures/full-size/index.js';
import { CACHE_DIR } from './paths.js';
import { SD15_FULL_SEED, writeSeededTensor } from './synthesize-sd15-full.js';

/** Bump when the generator changes, so stale caches are not reused. */
const GENERATOR_VERSION = 1;
const MANIFEST = 'synthesized.json';
export const FULL_SIZE_DATA = 'model.onnx_data';
const INLINE_BELOW = 1024;
const ALIGN = 4096;

interface Manifest {
  seed: number;
  generator: number;
  graphSha256: string;
  dataBytes: number;
}

export interface SynthesizedFullSize {
  /** The folder: `model.onnx`, `model.onnx_data`. */
  dir: string;
  model: string;
  built: BuiltFullSize;
  dataBytes: number;
}

/**
 * The layout `o` saved as `model.onnx` + `model.onnx_data` with seeded weights;
 * synthesized on first use.
 */
export function ensureFullSizeWeights(o: FullSizeOptions, seed = SD15_FULL_SEED): SynthesizedFullSize {
  const name = `${o.layout}-${o.style}${o.ort ? '-ort' : ''}-${o.dtype ?? 'f32'}-seed-${seed}-v${GENERATOR_VERSION}`;
  const root = path.join(CACHE_DIR, 'full-size');
  const dir = path.join(root, name);
  fs.mkdirSync(root, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(root, '.tmp-'));
  try {
    // The graph is rebuilt every time (a fraction of a second) and compared with the cached one.
    const { built, dataBytes, plan } = planExternal(o, tmp, seed);
    const graph = fs.readFileSync(path.join(tmp, 'model.onnx'));
    const sha = createHash('sha256').update(graph).digest('hex');
    if (isComplete(dir, seed, sha)) return { dir, model: path.join(dir, 'model.onnx'), built, dataBytes };
    writeData(path.join(tmp, FULL_SIZE_DATA), plan, dataBytes, seed);
    const manifest: Manifest = { seed, generator: GENERATOR_VERSION, graphSha256: sha, dataBytes };
    fs.writeFileSync(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 1));
    fs.chmodSync(tmp, 0o755); // mkdtemp made it private
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    return { dir, model: path.join(dir, 'model.onnx'), built, dataBytes };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface PlannedWeight {
  name: string;
  dims: number[];
  dtype: DataType;
  offset: number;
  length: number;
}

/**
 * Builds the layout, points every elided weight of 1 KiB or more at its place in
 * `model.onnx_data` (4 KiB-aligned), gives the smaller ones inline seeded values,
 * and writes `model.onnx` (the graph only) into `dir`.
 */
function planExternal(o: FullSizeOptions, dir: string, seed: number): { built: BuiltFullSize; dataBytes: number; plan: PlannedWeight[] } {
  const built = buildFullSize(o);
  const model = built.model;
  model.baseDir = dir;
  const source = new FileByteSource(path.join(dir, FULL_SIZE_DATA), FULL_SIZE_DATA);
  const plan: PlannedWeight[] = [];
  let offset = 0;
  for (const v of model.graph.initializers.values()) {
    const t = v.initializer!;
    if (t.storage.kind !== 'elided') continue;
    if (t.byteLength < INLINE_BELOW) {
      t.storage = { kind: 'inline', bytes: seededBytes({ name: v.name, dims: t.dims, dtype: t.dtype, offset: 0, length: t.byteLength }, seed), encoding: 'raw' };
      continue;
    }
    offset = Math.ceil(offset / ALIGN) * ALIGN;
    plan.push({ name: v.name, dims: t.dims, dtype: t.dtype, offset, length: t.byteLength });
    t.storage = { kind: 'external', source, location: FULL_SIZE_DATA, offset, length: t.byteLength, extraEntries: [] };
    offset += t.byteLength;
  }
  // Only the protobuf is written: external tensors are referenced where they will be.
  saveModel(model, path.join(dir, 'model.onnx'), { reuseWeights: true, sizeThreshold: Infinity });
  return { built, dataBytes: offset, plan };
}

/** A small weight's seeded bytes, as writeData would write them into the data file. */
function seededBytes(w: PlannedWeight, seed: number): Uint8Array {
  const out = new Uint8Array(w.length);
  writeSeededTensor({ bytes: out }, w, seed);
  return out;
}

function writeData(file: string, plan: PlannedWeight[], bytes: number, seed: number): void {
  const fd = fs.openSync(file, 'wx');
  try {
    fs.ftruncateSync(fd, bytes);
    for (const p of plan) writeSeededTensor(fd, p, seed);
  } finally {
    fs.closeSync(fd);
  }
}

function isComplete(dir: string, seed: number, graphSha256: string): boolean {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return false;
  }
  if (manifest.seed !== seed || manifest.generator !== GENERATOR_VERSION || manifest.graphSha256 !== graphSha256) return false;
  try {
    return fs.statSync(path.join(dir, FULL_SIZE_DATA)).size === manifest.dataBytes && fs.statSync(path.join(dir, 'model.onnx')).isFile();
  } catch {
    return false;
  }
}
