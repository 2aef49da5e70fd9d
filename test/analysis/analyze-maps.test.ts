/**
 * `deltac analyze` on a tiny hand-made model whose attention pattern is known:
 * tokens carry one-hot positions, and the projections make every query attend to
 * the token one row down and two columns right. The centroid-aligned map must
 * come out as a direct computation of the same softmax gives it, peaked at
 * centre + (1, 2), and the locality numbers must follow from it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze/index.js';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { saveModel } from '../../src/onnx/save.js';
import { writeNpy } from '../../src/runtime/npy.js';
import { makeTempDir } from '../helpers/paths.js';

const H = 6;
const W = 5;
const N = H * W;
const C = N; // one channel per position
const SHIFT: [number, number] = [1, 2];
/** α²·scale: the score of the attended token (all others score 0). */
const BETA = 6;
const SCALE = 1 / Math.sqrt(C);
const ALPHA = Math.sqrt(BETA / SCALE);

const tmp = makeTempDir('deltac-analyze-maps-');
afterAll(() => tmp.cleanup());

/** sample [1, C, H, W] → channels-last tokens → single-head self-attention → to_out → out [1, N, C]. */
function handMadeModel(): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 17);
  const g = m.graph;
  const f32 = (values: number[] | Float32Array, dims: number[]) => Tensor.fromFloat32(Float32Array.from(values), dims);
  const init = (name: string, t: Tensor) => g.addInitializer(name, t, true);
  const op = (name: string, type: string, inputs: Parameters<typeof g.op>[1], attributes = {}) => g.op(type, inputs, { name, output: name, attributes });
  const sample = g.addInput('sample', { kind: 'tensor', dtype: DataType.FLOAT, shape: [1, C, H, W] });
  const nhwc = op('/m/mid_block/attentions.0/Transpose', 'Transpose', [sample], { perm: { type: 'ints', value: [0, 2, 3, 1] } });
  const x = op('/m/mid_block/attentions.0/Reshape', 'Reshape', [nhwc, init('tokens_shape', Tensor.fromInt64([1, N, C]))]);
  const wq = new Float32Array(C * C);
  const wk = new Float32Array(C * C);
  for (let i = 0; i < C; i++) wq[i * C + i] = ALPHA;
  // k(m') = α·onehot(m' − shift): query m scores α² on key m + shift
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      const qy = y - SHIFT[0];
      const qx = xx - SHIFT[1];
      if (qy >= 0 && qx >= 0) wk[(y * W + xx) * C + qy * W + qx] = ALPHA;
    }
  }
  const wv = Float32Array.from({ length: C * C }, (_, i) => Math.sin(i * 0.37) * 0.2);
  const wo = Float32Array.from({ length: C * C }, (_, i) => Math.cos(i * 0.11) * 0.2);
  const prefix = '/m/mid_block/attentions.0/transformer_blocks.0/attn1';
  const heads = init('heads_shape', Tensor.fromInt64([1, N, 1, C]));
  const proj = (name: string, w: Float32Array, perm: number[]) => {
    const p = op(`${prefix}/${name}/MatMul`, 'MatMul', [x, init(`${name}.weight`, f32(w, [C, C]))]);
    const r = op(`${prefix}/${name}/Reshape`, 'Reshape', [p, heads]);
    return op(`${prefix}/${name}/Transpose`, 'Transpose', [r], { perm: { type: 'ints', value: perm } });
  };
  const q = proj('to_q', wq, [0, 2, 1, 3]);
  const k = proj('to_k', wk, [0, 2, 3, 1]);
  const v = proj('to_v', wv, [0, 2, 1, 3]);
  const scores = op(`${prefix}/MatMul`, 'MatMul', [q, k]);
  const scaled = op(`${prefix}/Mul`, 'Mul', [scores, init('scale', f32([SCALE], []))]);
  const probs = op(`${prefix}/Softmax`, 'Softmax', [scaled], { axis: { type: 'int', value: -1 } });
  const o = op(`${prefix}/MatMul_1`, 'MatMul', [probs, v]);
  const t = op(`${prefix}/Transpose_3`, 'Transpose', [o], { perm: { type: 'ints', value: [0, 2, 1, 3] } });
  const merged = op(`${prefix}/Reshape_3`, 'Reshape', [t, init('merge_shape', Tensor.fromInt64([1, N, C]))]);
  const out = op(`${prefix}/to_out.0/MatMul`, 'MatMul', [merged, init('to_out.weight', f32(wo, [C, C]))]);
  const biased = op(`${prefix}/to_out.0/Add`, 'Add', [out, init('to_out.bias', f32(Array.from({ length: C }, (_, i) => 0.01 * i), [C]))]);
  g.addOutput(biased);
  return m;
}

/** The aligned map computed directly: every query's softmax row, shifted, averaged. */
function directMap(): Float64Array {
  const gw = 2 * W - 1;
  const map = new Float64Array((2 * H - 1) * gw);
  for (let qy = 0; qy < H; qy++) {
    for (let qx = 0; qx < W; qx++) {
      const ty = qy + SHIFT[0];
      const tx = qx + SHIFT[1];
      const hit = ty < H && tx < W;
      const z = hit ? Math.exp(BETA) + (N - 1) : N;
      for (let my = 0; my < H; my++) {
        for (let mx = 0; mx < W; mx++) {
          const p = (hit && my === ty && mx === tx ? Math.exp(BETA) : 1) / z;
          map[(my - qy + H - 1) * gw + (mx - qx + W - 1)]! += p / N;
        }
      }
    }
  }
  return map;
}

describe('deltac analyze: centroid-aligned maps on a known attention pattern', () => {
  const file = path.join(tmp.dir, 'shifted.onnx');
  saveModel(handMadeModel(), file);
  const inputs = path.join(tmp.dir, 'inputs');
  fs.mkdirSync(inputs);
  // one-hot positions: channel c is 1 at token c
  const sample = new Float32Array(C * N);
  for (let c = 0; c < C; c++) sample[c * N + c] = 1;
  writeNpy(path.join(inputs, 'in0.sample.npy'), sample, [1, C, H, W]);

  it('matches the direct computation and peaks one row down, two columns right of the query', async () => {
    const r = await analyzeModel(file, { inputs, queries: 1000 });
    expect(r.layers).toHaveLength(1);
    const l = r.layers[0]!;
    expect(l).toMatchObject({ name: 'mid_block.attentions.0.transformer_blocks.0.attn1', height: H, width: W, heads: 1, probsSource: 'captured' });
    expect(l.map!.rows).toBe(N);
    const expected = directMap();
    const got = l.map!.data;
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    const peak = got.indexOf(Math.max(...got));
    expect([Math.floor(peak / (2 * W - 1)), peak % (2 * W - 1)]).toEqual([H - 1 + SHIFT[0], W - 1 + SHIFT[1]]);
    // a 3×3 window misses the shifted peak, 5×5 holds it
    const mass = (k: number) => l.locality!.windows.find((w) => w.k === k)!.mass;
    expect(mass(5) - mass(3)).toBeGreaterThan(0.5);
    expect(l.locality!.whole).toBeCloseTo(1, 6);
    expect(l.locality!.smallestK.find((s) => s.fraction === 0.5)!.k).toBe(5);
    // the TypeScript attention that the ERF differentiates reproduces onnxruntime's
    expect(l.check.output!).toBeLessThan(1e-5);
    expect(l.check.probs!).toBeLessThan(1e-5);
    // attention ERF at the centre token reaches the attended token (centre + shift) most
    const erf = l.attentionErf!;
    const centre = l.erfToken;
    const target = centre + SHIFT[0] * W + SHIFT[1];
    const others = [...erf].filter((_, i) => i !== target && i !== centre);
    expect(erf[target]!).toBeGreaterThan(Math.max(...others));
  });
});
