/**
 * One SD1.5 self-attention layer as the TorchScript exporter writes it, at a given
 * H×W×C: a channels-last [B, H, W, C] input (what proj_in's Transpose produces in
 * the UNet) reshaped to [B, H·W, C] tokens, to_q/to_k/to_v, heads split, both
 * scaled by √(1/√d), Softmax, to_out with bias. Nothing else, so that timings
 * compare the layer alone. Plus a ΔConvFusion checkpoint for it, so the same model
 * can be converted by deltac and both timed in onnxruntime.
 */
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Value } from '../../src/ir/value.js';
import { deltaCheckpointTensors, seededRandom, writeSafetensors } from '../../test/helpers/safetensors-writer.js';

export interface LayerShape {
  height: number;
  width: number;
  channels: number;
  heads?: number;
  batch?: number;
}

const BLOCK = 'down_blocks.0.attentions.0.transformer_blocks.0';

export function attentionLayerModel(s: LayerShape, seed = 1): Model {
  const { height: H, width: W, channels: C } = s;
  const heads = s.heads ?? 8;
  const B = s.batch ?? 1;
  const d = C / heads;
  const N = H * W;
  const rand = seededRandom(seed);
  const weight = (rows: number, cols: number) => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) / Math.sqrt(rows);
    return Tensor.fromFloat32(data, [rows, cols]);
  };
  const g = new Graph('attention_layer');
  const model = new Model(g);
  model.opsetImports.set('', 17);
  model.producerName = 'deltac-bench';
  const nhwc = g.addInput('sample', { kind: 'tensor', dtype: DataType.FLOAT, shape: [B, H, W, C] });
  const name = (op: string) => `/m/${BLOCK.replace(/\./g, '/').replace(/\/(\d+)/g, '.$1')}/${op}`;
  const i64 = (label: string, v: number[]) => g.addInitializer(label, Tensor.fromInt64(v));
  const op = (type: string, inputs: (Value | null)[], label: string, attrs: Record<string, number[] | number> = {}) =>
    g.op(type, inputs, {
      name: name(label),
      attributes: Object.fromEntries(
        Object.entries(attrs).map(([k, v]) => [k, Array.isArray(v) ? { type: 'ints' as const, value: v } : { type: 'int' as const, value: v }]),
      ),
    });
  const tokens = op('Reshape', [nhwc, i64('tokens_shape', [B, N, C])], '../Reshape');
  const proj = (w: string) => op('MatMul', [tokens, g.addInitializer(`${w}.weight_t`, weight(C, C))], `attn1/${w}/MatMul`);
  const q = proj('to_q');
  const k = proj('to_k');
  const v = proj('to_v');
  const heads4 = i64('heads_shape', [B, N, heads, d]);
  const scale = g.addInitializer('sqrt_scale', Tensor.fromFloat32([Math.sqrt(1 / Math.sqrt(d))], []));
  const qh = op('Mul', [op('Transpose', [op('Reshape', [q, heads4], 'attn1/Reshape')], 'attn1/Transpose', { perm: [0, 2, 1, 3] }), scale], 'attn1/Mul');
  const kh = op('Mul', [op('Transpose', [op('Reshape', [k, heads4], 'attn1/Reshape_1')], 'attn1/Transpose_2', { perm: [0, 2, 3, 1] }), scale], 'attn1/Mul_1');
  const vh = op('Transpose', [op('Reshape', [v, heads4], 'attn1/Reshape_2')], 'attn1/Transpose_1', { perm: [0, 2, 1, 3] });
  const probs = op('Softmax', [op('MatMul', [qh, kh], 'attn1/MatMul')], 'attn1/Softmax', { axis: -1 });
  const merged = op('Reshape', [op('Transpose', [op('MatMul', [probs, vh], 'attn1/MatMul_1')], 'attn1/Transpose_3', { perm: [0, 2, 1, 3] }), i64('merge_shape', [B, N, C])], 'attn1/Reshape_3');
  const bias = Tensor.fromFloat32(Float32Array.from({ length: C }, () => rand() * 0.1), [C]);
  const out = op('Add', [op('MatMul', [merged, g.addInitializer('to_out.weight_t', weight(C, C))], 'attn1/to_out.0/MatMul'), g.addInitializer('to_out.bias', bias)], 'attn1/to_out.0/Add');
  const y = out;
  g.addOutput(y);
  y.type = { kind: 'tensor', dtype: DataType.FLOAT, shape: [B, N, C] };
  y.typeSource = 'declared';
  return model;
}

/** Writes a ΔConvFusion checkpoint for the layer (K = 9, Ci = C/2, two gates). */
export function writeLayerCheckpoint(file: string, s: LayerShape, kernel = 9, seed = 2): void {
  writeSafetensors(file, deltaCheckpointTensors([{ block: BLOCK, channels: s.channels, kernel }], seed));
}
