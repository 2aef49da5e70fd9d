/**
 * What binding an F16 checkpoint costs against an F32 one, before and after the
 * whole-array half conversions (src/ir/half.ts), in the same process. The baseline
 * is the per-element routine Tensor used before (a DataView read or write and a call
 * to the scalar reference conversion per element), kept here. Two measurements on a
 * full-size SD1.5 ΔConvFusion checkpoint (16 blocks, K = 9, 25.7 M values):
 * - the casts alone: f16 → f32 (every tensor, as convert() binds them into an f32
 *   model) and f32 → f16 (as into an f16 model), old routine vs Tensor's;
 * - convert() of the sd15-full graph with the F32 checkpoint and with the F16 one,
 *   the latter once with Tensor.toFloat32 swapped back to the old routine.
 * The least of 5 casts and of 5 conversions (taking turns): on a shared machine the
 * minimum is the run least disturbed by others.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convert } from '../src/convert.js';
import { DataType } from '../src/ir/dtype.js';
import { float32ToHalfBits, halfBitsToFloat32 } from '../src/ir/half.js';
import { Tensor } from '../src/ir/tensor.js';
import { loadModel } from '../src/onnx/load.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { MODELS_DIR } from '../test/helpers/paths.js';
import { writeSd15DeltaCheckpoint } from './models/sd15-delta.js';
import { leastMs } from './timing.js';


export interface HalfCastRow {
  what: string;
  elements: number;
  /** The per-element routine (before). */
  oldMs: number;
  /** Tensor's whole-array conversion (after). */
  newMs: number;
  speedup: number;
}

export interface HalfConvertResult {
  f32Ms: number;
  /** convert() with the F16 checkpoint, Tensor.toFloat32 swapped back to the per-element routine. */
  f16OldMs: number;
  f16NewMs: number;
  ratioBefore: number;
  ratioAfter: number;
  target: number;
  met: boolean;
}

/** An F16 checkpoint may cost at most this many times the F32 one to convert with. */
const TARGET = 1.5;

/** The f16 → f32 routine Tensor.toFloat32 had before (DataView + halfBitsToFloat32 per element). */
function oldHalfToFloat32(t: Tensor): Float32Array {
  const b = t.bytes();
  const n = t.elementCount;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = halfBitsToFloat32(dv.getUint16(i * 2, true));
  return out;
}

/** The f32 → f16 routine Tensor.fromFloat32 had before (float32ToHalfBits + DataView per element). */
function oldFloat32ToHalf(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(i * 2, float32ToHalfBits(values[i]!), true);
  return bytes;
}

export async function benchHalfCast(): Promise<{ casts: HalfCastRow[]; convert: HalfConvertResult }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-half-'));
  try {
    const files: Record<'F32' | 'F16', string> = { F32: '', F16: '' };
    for (const dtype of ['F32', 'F16'] as const) {
      files[dtype] = path.join(dir, `sd15-delta-${dtype}.safetensors`);
      writeSd15DeltaCheckpoint(files[dtype], 7, dtype);
    }
    const read = (file: string) => {
      const ckpt = Checkpoint.open(file);
      return [...ckpt.file.entries.keys()].map((k) => ckpt.file.tensor(k));
    };
    const halves = read(files.F16);
    const floats = read(files.F32).map((t) => t.toFloat32());
    const elements = floats.reduce((a, f) => a + f.length, 0);

    // the same bits either way, or the comparison means nothing
    halves.forEach((t) => {
      const a = new Uint32Array(oldHalfToFloat32(t).buffer);
      const b = new Uint32Array(t.toFloat32().buffer);
      if (!a.every((x, i) => x === b[i])) throw new Error('half → float32: the array conversion differs from the per-element one');
    });
    floats.forEach((f) => {
      const a = oldFloat32ToHalf(f);
      const b = Tensor.fromFloat32(f, [f.length], DataType.FLOAT16).bytes();
      if (!a.every((x, i) => x === b[i])) throw new Error('float32 → half: the array conversion differs from the per-element one');
    });

    const casts: HalfCastRow[] = [];
    const row = (what: string, oldMs: number, newMs: number) => casts.push({ what, elements, oldMs, newMs, speedup: oldMs / newMs });
    // Tensor.castTo(FLOAT) before: toFloat32() per element, then fromFloat32() copied the result into the tensor's bytes
    const oldCastTo = (t: Tensor) => new Uint8Array(oldHalfToFloat32(t).buffer.slice(0));
    row('f16 → f32 (F16 checkpoint into an f32 model)', leastMs(5, () => halves.forEach(oldCastTo)), leastMs(5, () => halves.forEach((t) => t.castTo(DataType.FLOAT))));
    row('f32 → f16 (F32 checkpoint into an f16 model)', leastMs(5, () => floats.forEach(oldFloat32ToHalf)), leastMs(5, () => floats.forEach((f) => Tensor.fromFloat32(f, [f.length], DataType.FLOAT16))));

    // the three conversions take turns, so that a change in the machine's load falls on all of them
    const once = (file: string) => {
      const model = loadModel(path.join(MODELS_DIR, 'sd15-full', 'model.graph.onnx'), { missingExternalData: 'warn' });
      const t0 = performance.now();
      convert(model, { weights: file });
      return performance.now() - t0;
    };
    const fast = Object.getOwnPropertyDescriptor(Tensor.prototype, 'toFloat32')!;
    const withOldCast = (file: string) => {
      Tensor.prototype.toFloat32 = function (this: Tensor) {
        return this.dtype === DataType.FLOAT16 ? oldHalfToFloat32(this) : (fast.value as () => Float32Array).call(this);
      };
      try {
        return once(file);
      } finally {
        Object.defineProperty(Tensor.prototype, 'toFloat32', fast);
      }
    };
    let [f32Ms, f16NewMs, f16OldMs] = [Infinity, Infinity, Infinity];
    for (let i = 0; i < 5; i++) {
      f32Ms = Math.min(f32Ms, once(files.F32));
      f16NewMs = Math.min(f16NewMs, once(files.F16));
      f16OldMs = Math.min(f16OldMs, withOldCast(files.F16));
    }
    const ratioAfter = f16NewMs / f32Ms;
    return {
      casts,
      convert: { f32Ms, f16OldMs, f16NewMs, ratioBefore: f16OldMs / f32Ms, ratioAfter, target: TARGET, met: ratioAfter <= TARGET },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
