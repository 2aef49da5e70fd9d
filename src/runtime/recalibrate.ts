/**
 * Recalibration of a statically quantized model after its conversion. The
 * model's activation scales were calibrated on the attention model; the
 * ΔConvBlocks change every activation after them, which may then leave those
 * ranges and be clipped (a clipped residual stream costs more than the
 * quantization itself). This step runs the converted model's float twin
 * (passes/quantization/float-twin.ts) in onnxruntime-node on seeded inputs, at the
 * smoke check's small sizes, and widens the parameters of the activations after the
 * converted layers to hold what it saw (passes/quantization/widen-ranges.ts): the
 * region's own output scale included, never narrowing one, leaving every activation
 * before the first converted layer as it was. Dynamically quantized models compute
 * their activation scales at run time and need none of this.
 */
import os from 'node:os';
import type ort from 'onnxruntime-node';
import { dtypeName } from '../ir/dtype.js';
import { halfBitsToFloat32 } from '../ir/half.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import { decodeModel } from '../onnx/load.js';
import { serializeModel } from '../onnx/save.js';
import { PYRAMID_CONV_DOMAIN } from '../passes/delta-conv/op.js';
import { floatTwin } from '../passes/quantization/float-twin.js';
import { type WidenedRange, activationParams, recordRecalibration, widenRanges } from '../passes/quantization/widen-ranges.js';
import { OrtModel } from './onnxruntime.js';
import { type SmokeInput, makeFeeds } from './smoke-check.js';
import { planInputs } from './smoke-inputs.js';

export interface RecalibrationOptions {
  /** Calibration input sets; default `sets` seeded sets of the smoke check's shapes. */
  inputs?: Record<string, ort.Tensor>[];
  /** Seeded sets when no inputs are given (default 4). */
  sets?: number;
  /** Sizes tried for symbolic spatial dims (default 32, 64, 16). */
  spatialSizes?: number[];
  /** Text tokens for a symbolic sequence dim (default 8). */
  sequence?: number;
  threads?: number;
}

export interface RecalibrationResult {
  status: 'done' | 'skipped';
  reason?: string;
  /** Static activation parameters after the converted layers (those the step looked at). */
  sites: number;
  /** Those widened, with the range they held and hold now. */
  widened: WidenedRange[];
  /** The calibration inputs (first set) and how many sets ran. */
  inputs: SmokeInput[];
  sets: number;
  ms: number;
}

/** Nodes computed from the converted layers (`blocks`: their node names; lowered nodes carry them as a prefix). */
function downstreamOf(model: Model, blocks: readonly string[]): Set<Node> {
  const seen = new Set<Node>();
  const stack = model.graph.nodes.filter((n) => blocks.some((b) => n.name === b || n.name.startsWith(`${b}/`)));
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const o of n.outputs) for (const u of o.users()) if (!seen.has(u)) stack.push(u);
  }
  return seen;
}

/**
 * Widens, in `model`, the static activation parameters after the converted layers
 * (`blocks`: the block node names the conversion report lists) to the ranges its
 * float twin reaches on the calibration inputs.
 */
export async function recalibrateQuantization(model: Model, blocks: readonly string[], options: RecalibrationOptions = {}): Promise<RecalibrationResult> {
  const started = performance.now();
  const skipped = (reason: string): RecalibrationResult => ({ status: 'skipped', reason, sites: 0, widened: [], inputs: [], sets: 0, ms: performance.now() - started });
  const params = activationParams(model);
  if (!params.size) return skipped('the model has no static activation quantization');
  const after = downstreamOf(model, blocks);
  const names = new Set([...params].filter(([, p]) => p.nodes.some((n) => after.has(n))).map(([name]) => name));
  if (!names.size) return skipped('no static activation quantization after the converted layers');
  const fused = model.graph.nodes.find((n) => n.domain === PYRAMID_CONV_DOMAIN);
  if (fused) return skipped(`${PYRAMID_CONV_DOMAIN} ${fused.opType} has no onnxruntime kernel (--emit fused)`);

  const twin = decodeModel(serializeModel(model), model.baseDir ?? '.', {}, 'float twin').model;
  const sites = floatTwin(twin);
  const observed = new Map<string, string[]>();
  const outputs = new Set(twin.graph.outputs);
  for (const [scale, values] of sites) {
    if (!names.has(scale)) continue;
    for (const v of values) {
      if (!outputs.has(v)) {
        v.type = v.type?.kind === 'tensor' ? { ...v.type, shape: null } : v.type;
        v.typeSource = 'declared';
        twin.graph.addOutput(v);
        outputs.add(v);
      }
      observed.set(scale, [...(observed.get(scale) ?? []), v.name]);
    }
  }
  const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 8));
  let session: OrtModel;
  try {
    session = await OrtModel.load('float twin', { threads, quiet: true, externalDataFolder: model.baseDir }, serializeModel(twin));
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
    return skipped(`its float twin does not load in onnxruntime (${(cause instanceof Error ? cause.message : String(cause)).split('\n')[0]})`);
  }
  const ranges = new Map<string, [number, number]>();
  let inputs: SmokeInput[] = [];
  let sets = 0;
  try {
    const fetch = [...new Set([...observed.values()].flat())];
    const run = async (feeds: Record<string, ort.Tensor>) => {
      const out = await session.runTensors(feeds, fetch);
      for (const [scale, tensors] of observed) {
        let [lo, hi] = ranges.get(scale) ?? [Infinity, -Infinity];
        for (const name of tensors) {
          const t = out[name];
          if (!t) continue;
          const data = t.type === 'float16' ? (t.data as Uint16Array) : t.data;
          const read = t.type === 'float16' ? halfBitsToFloat32 : (x: number) => x;
          if (!(data instanceof Float32Array || t.type === 'float16')) continue;
          for (let i = 0; i < data.length; i++) {
            const x = read(data[i] as number);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
          }
        }
        ranges.set(scale, [lo, hi]);
      }
      sets++;
    };
    if (options.inputs) {
      for (const feeds of options.inputs) await run(feeds);
      inputs = Object.entries(options.inputs[0] ?? {}).map(([name, t]) => ({ name, dtype: t.type, dims: [...t.dims] }));
    } else {
      const errors: string[] = [];
      for (const size of options.spatialSizes ?? [32, 64, 16]) {
        const plan = planInputs(model, size, options.sequence ?? 8);
        if (typeof plan === 'string') return skipped(plan);
        try {
          for (let seed = 1; seed <= (options.sets ?? 4); seed++) await run(makeFeeds(plan, seed));
          inputs = plan.map((p) => ({ name: p.name, dtype: dtypeName(p.dtype), dims: p.dims }));
          break;
        } catch (e) {
          ranges.clear();
          sets = 0;
          errors.push(`${size}: ${(e as Error).message.split('\n')[0]}`);
          if (!plan.some((p) => p.spatial)) break;
        }
      }
      if (!sets) return skipped(`the float twin does not run (${errors.join('; ')})`);
    }
  } finally {
    await session.release();
  }
  const { widened, edits } = widenRanges(model, ranges);
  // recorded in the model: the check after the conversion tells these edits from damage
  recordRecalibration(model, edits);
  return { status: 'done', sites: names.size, widened, inputs, sets, ms: performance.now() - started };
}
