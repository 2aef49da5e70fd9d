/**
 * Test fixtures shared by the reference and codegen tests: seeded random data,
 * ΔConvBlock layers (random or read from the shared fixture checkpoints), models
 * with PyramidConvBlock nodes, and a standard-ONNX lowering of one ΔConvBlock
 * that onnxruntime-node can run (the independent oracle for the CPU reference).
 */
import fs from 'node:fs';
import path from 'node:path';
import { attr } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Value } from '../../src/ir/value.js';
import {
  PYRAMID_CONV_DOMAIN,
  PYRAMID_CONV_OP,
  PYRAMID_CONV_OPSET,
  type GateKind,
} from '../../src/passes/delta-conv/op.js';
import type { DeltaConvBlockWeights } from '../../src/reference/delta-conv-block.js';
import { scaledSize } from '../../src/reference/pyramid-conv.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';

export const SHARED = path.resolve(import.meta.dirname, '../../../shared');

import { seededRandom as rng } from '../helpers/random.js';
import { compareArrays } from '../../src/runtime/compare.js';

export { rng };

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** max|a − b| / max|b| (NaN counts as an infinite difference). */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  return compareArrays(actual, expected).rel;
}

/** One ΔConvBlock layer: its configuration, weights and the spatial size it runs at. */
export interface LayerSpec {
  path: string;
  channels: number;
  inner: number;
  kernel: number;
  scales: number[];
  gate: GateKind;
  height: number;
  width: number;
  weights: DeltaConvBlockWeights;
}

export function randomWeights(c: number, ci: number, k: number, gates: number, seed: number): DeltaConvBlockWeights {
  const gOut = (gates * ci) / 2;
  return {
    upWeight: randomArray(ci * c, seed + 1, 1 / Math.sqrt(c)),
    upBias: randomArray(ci, seed + 2, 0.1),
    gateWeights: randomArray(gates * k * k * ci, seed + 3, 1 / k),
    outWeight: randomArray(c * gOut, seed + 4, 1 / Math.sqrt(gOut)),
    outBias: randomArray(c, seed + 5, 0.1),
    poolWeight: randomArray(c * c, seed + 6, 1 / Math.sqrt(c)),
    poolBias: randomArray(c, seed + 7, 0.1),
  };
}

// ---- the shared fixture checkpoints -----------------------------------------

/** A safetensors file's tensors as float32, read with deltac's own reader. */
export function readSafetensors(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const st = SafetensorsFile.open(file);
  return new Map(st.keys().map((key) => [key, { shape: [...st.entries.get(key)!.shape], data: st.tensor(key).toFloat32() }]));
}

/** Transformer-block spatial sizes of the fixture models (SPEC.md §5). */
function sd15MiniSize(block: string, latent: [number, number]): [number, number] {
  const level = block.startsWith('down_blocks.')
    ? Number(block.split('.')[1])
    : block.startsWith('up_blocks.')
      ? 3 - Number(block.split('.')[1])
      : 3; // mid_block
  return [latent[0] >> level, latent[1] >> level];
}

/**
 * The ΔConvBlock layers of a fixture model (sd15-mini at its 32×24 latent or
 * pixart-mini at its 8×6 token grid), weights from its delta.safetensors.
 */
export function fixtureLayers(model: 'sd15-mini' | 'pixart-mini', latent: [number, number] = [32, 24]): LayerSpec[] {
  const st = readSafetensors(path.join(SHARED, 'models', model, 'delta.safetensors'));
  const blocks = [...st.keys()].filter((k) => k.endsWith('.conv1.conv_up.weight')).map((k) => k.slice(0, -'.conv1.conv_up.weight'.length));
  return blocks.map((block) => {
    const get = (name: string) => {
      const t = st.get(`${block}.conv1.${name}`);
      if (!t) throw new Error(`${block}: ${name} missing`);
      return t;
    };
    const up = get('conv_up.weight');
    const [ci, c] = up.shape as [number, number];
    const gates: Float32Array[] = [];
    for (let g = 0; st.has(`${block}.conv1.gates.${g}.conv_spatial.weight`); g++) gates.push(get(`gates.${g}.conv_spatial.weight`).data);
    const k = get('gates.0.conv_spatial.weight').shape[0]!;
    const gateWeights = new Float32Array(gates.length * k * k * ci);
    gates.forEach((w, g) => gateWeights.set(w, g * k * k * ci));
    const [height, width] = model === 'pixart-mini' ? [8, 6] : sd15MiniSize(block, latent);
    return {
      path: block,
      channels: c,
      inner: ci,
      kernel: k,
      scales: gates.length === 2 ? [1, 0.5] : [1],
      gate: model === 'pixart-mini' ? 'sigmoid' : 'simple',
      height,
      width,
      weights: {
        upWeight: up.data,
        upBias: get('conv_up.bias').data,
        gateWeights,
        outWeight: get('conv_out.weight').data,
        outBias: get('conv_out.bias').data,
        poolWeight: get('conv_pool.weight').data,
        poolBias: get('conv_pool.bias').data,
      },
    } satisfies LayerSpec;
  });
}

// ---- models with PyramidConvBlock nodes (what the conversion pass produces) ----

/** A model whose graph chains one PyramidConvBlock node per layer, weights as initializers. */
export function pyramidModel(layers: LayerSpec[], dtype: 'float32' | 'float16' = 'float32'): Model {
  const model = new Model(new Graph('main'));
  model.opsetImports.set('', 17);
  model.opsetImports.set(PYRAMID_CONV_DOMAIN, PYRAMID_CONV_OPSET);
  const g = model.graph;
  const dt = dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  layers.forEach((l, i) => {
    const x = g.addInput(`x${i}`, { kind: 'tensor', dtype: dt, shape: ['batch', l.height * l.width, l.channels] });
    const init = (name: string, data: Float32Array, dims: number[]) => g.addInitializer(`${l.path}.${name}`, Tensor.fromFloat32(data, dims, dt));
    const hw = g.addInitializer(`${l.path}.hw`, Tensor.fromInt64([l.height, l.width]));
    const s = l.scales.length;
    const k = l.kernel;
    const w = l.weights;
    const node = g.addNode(
      PYRAMID_CONV_OP,
      [
        x,
        hw,
        init('conv_up.weight', w.upWeight, [l.inner, l.channels]),
        init('conv_up.bias', w.upBias, [l.inner]),
        init('gates', w.gateWeights, [s, k, k, l.inner]),
        init('conv_out.weight', w.outWeight, [l.channels, (s * l.inner) / 2]),
        init('conv_out.bias', w.outBias, [l.channels]),
        init('conv_pool.weight', w.poolWeight, [l.channels, l.channels]),
        init('conv_pool.bias', w.poolBias, [l.channels]),
      ],
      {
        domain: PYRAMID_CONV_DOMAIN,
        name: `/${l.path.replaceAll('.', '/')}/attn1/PyramidConvBlock`,
        attributes: {
          kernel_size: attr.int(k),
          scales: attr.floats(l.scales),
          gate: attr.string(l.gate),
          module_path: attr.string(l.path),
        },
      },
    );
    g.addOutput(node.outputs[0]!);
  });
  return model;
}

// ---- a standard-ONNX ΔConvBlock for onnxruntime ------------------------------

/**
 * One ΔConvBlock lowered to standard ONNX ops (opset 17) at a static size:
 * MatMul projections, exact adaptive pooling as two pooling-matrix MatMuls,
 * grouped Conv, Slice/Mul/Sigmoid gates, Resize (linear, pytorch_half_pixel),
 * ReduceMean for conv_pool. Input `x` [B, H·W, C] → output `y`.
 */
export function onnxBlockModel(l: LayerSpec, batch: number): Model {
  const model = new Model(new Graph('delta_conv_block'));
  model.irVersion = 8;
  model.opsetImports.set('', 17);
  const g = model.graph;
  const { channels: c, inner: ci, kernel: k, height: H, width: W } = l;
  const n = H * W;
  const half = ci / 2;
  const f = (name: string, data: Float32Array | number[], dims: number[]) => g.addInitializer(name, Tensor.fromFloat32(data, dims));
  const i64 = (name: string, values: number[]) => g.addInitializer(name, Tensor.fromInt64(values));
  const transpose = (w: Float32Array, rows: number, cols: number) => {
    const t = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) t[q * rows + r] = w[r * cols + q]!;
    return t;
  };
  const x = g.addInput('x', { kind: 'tensor', dtype: DataType.FLOAT, shape: [batch, n, c] });
  const w = l.weights;
  const u = g.op('Add', [g.op('MatMul', [x, f('up_wT', transpose(w.upWeight, ci, c), [c, ci])]), f('up_b', w.upBias, [ci])]);
  const u4 = g.op('Reshape', [u, i64('shape_bhwc', [batch, H, W, ci])]);
  const uNchw = g.op('Transpose', [u4], { attributes: { perm: attr.ints([0, 3, 1, 2]) } });
  const gated: Value[] = [];
  l.scales.forEach((s, gi) => {
    let v = uNchw;
    if (s !== 1) {
      const ho = scaledSize(H, s);
      const wo = scaledSize(W, s);
      v = g.op('MatMul', [g.op('MatMul', [f(`pool_h${gi}`, poolMatrix(H, ho), [ho, H]), v]), f(`pool_wT${gi}`, transpose(poolMatrix(W, wo), wo, W), [W, wo])]);
    }
    const convW = new Float32Array(ci * k * k);
    for (let ch = 0; ch < ci; ch++) for (let t = 0; t < k * k; t++) convW[ch * k * k + t] = w.gateWeights[(gi * k * k + t) * ci + ch]!;
    const d = g.op('Conv', [v, f(`gate_w${gi}`, convW, [ci, 1, k, k])], {
      attributes: { group: attr.int(ci), kernel_shape: attr.ints([k, k]), pads: attr.ints([k >> 1, k >> 1, k >> 1, k >> 1]) },
    });
    const a = g.op('Slice', [d, i64(`a_start${gi}`, [0]), i64(`a_end${gi}`, [half]), i64(`axis1_${gi}`, [1])]);
    const b = g.op('Slice', [d, i64(`b_start${gi}`, [half]), i64(`b_end${gi}`, [ci]), i64(`axis1b_${gi}`, [1])]);
    let gg =
      l.gate === 'simple'
        ? g.op('Mul', [g.op('Mul', [a, b]), f(`sqrt_half${gi}`, [Math.sqrt(half)], [])])
        : g.op('Mul', [a, g.op('Sigmoid', [b])]);
    if (s !== 1) {
      gg = g.op('Resize', [gg, null, null, i64(`sizes${gi}`, [batch, half, H, W])], {
        attributes: { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('pytorch_half_pixel') },
      });
    }
    gated.push(gg);
  });
  const cat = gated.length === 1 ? gated[0]! : g.op('Concat', gated, { attributes: { axis: attr.int(1) } });
  const tokens = g.op('Reshape', [g.op('Transpose', [cat], { attributes: { perm: attr.ints([0, 2, 3, 1]) } }), i64('shape_bnc', [batch, n, l.scales.length * half])]);
  const gOut = l.scales.length * half;
  const y = g.op('Add', [g.op('MatMul', [tokens, f('out_wT', transpose(w.outWeight, c, gOut), [gOut, c])]), f('out_b', w.outBias, [c])]);
  const mean = g.op('ReduceMean', [x], { attributes: { axes: attr.ints([1]), keepdims: attr.int(1) } });
  const pooled = g.op('Add', [g.op('MatMul', [mean, f('pool_wT', transpose(w.poolWeight, c, c), [c, c])]), f('pool_b', w.poolBias, [c])]);
  const out = g.op('Add', [y, pooled], { output: 'y' });
  out.type = { kind: 'tensor', dtype: DataType.FLOAT, shape: [batch, n, c] };
  g.addOutput(out);
  return model;
}

/** [out, in] matrix of PyTorch's adaptive average pooling along one axis. */
export function poolMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const r0 = Math.floor((i * inSize) / outSize);
    const r1 = Math.ceil(((i + 1) * inSize) / outSize);
    for (let r = r0; r < r1; r++) m[i * inSize + r] = 1 / (r1 - r0);
  }
  return m;
}
