import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { serializeModel } from '../../src/onnx/save.js';
import {
  adaptiveAvgPool2d,
  applyGate,
  bilinearResize,
  deltaConvBlockReference,
  depthwiseConv2d,
  linearTaps,
  pyramidConvReference,
} from '../../src/reference/index.js';
import { fixtureLayers, maxRelError, onnxBlockModel, randomArray, randomWeights, type LayerSpec } from './fixtures.js';

const ext = (height: number, width: number, batch = 1) => ({ batch, height, width });

describe('adaptive average pooling (PyTorch cells)', () => {
  it('pools 3 → 1 and 5 → 2 with overlapping cells', () => {
    expect([...adaptiveAvgPool2d(new Float32Array([1, 2, 3]), ext(3, 1), 1, 1, 1)]).toEqual([2]);
    // 5 → 2: cell 0 = rows 0..2, cell 1 = rows 2..4 (row 2 in both)
    expect([...adaptiveAvgPool2d(new Float32Array([1, 2, 3, 4, 5]), ext(5, 1), 1, 2, 1)]).toEqual([2, 4]);
    // 2-D, 4×3 → 2×1, two channels (second channel negated)
    const src = new Float32Array([1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8, 9, -9, 10, -10, 11, -11, 12, -12]);
    expect([...adaptiveAvgPool2d(src, ext(4, 3), 2, 2, 1)]).toEqual([3.5, -3.5, 9.5, -9.5]);
  });
});

describe('bilinear resize (align_corners=False, clamped like PyTorch)', () => {
  it('upsamples 2 → 3 with clamped edges', () => {
    expect([...bilinearResize(new Float32Array([10, 20]), ext(1, 2), 1, 1, 3)]).toEqual([10, 15, 20]);
    expect(linearTaps(2, 3)).toEqual([
      { i0: 0, i1: 1, w0: 1, w1: 0 },
      { i0: 0, i1: 1, w0: 0.5, w1: 0.5 },
      { i0: 1, i1: 1, w0: expect.closeTo(5 / 6, 12), w1: expect.closeTo(1 / 6, 12) },
    ]);
  });
  it('upsamples 2 → 4 (quarter-pixel weights) and 1 → 3 (constant)', () => {
    expect([...bilinearResize(new Float32Array([0, 8]), ext(2, 1), 1, 4, 1)]).toEqual([0, 2, 6, 8]);
    expect([...bilinearResize(new Float32Array([7]), ext(1, 1), 1, 3, 3)]).toEqual(new Array(9).fill(7));
  });
});

describe('depthwise conv and gates', () => {
  it('zero-pads by K//2', () => {
    const ones = new Float32Array(9).fill(1);
    expect([...depthwiseConv2d(ones, ext(3, 3), 1, new Float32Array(9).fill(1), 3)]).toEqual([4, 6, 4, 6, 9, 6, 4, 6, 4]);
  });
  it('keeps channels apart and reads HWC weights', () => {
    // 1×1 image, K=3: only the centre tap (index 4) contributes; channel c uses weight[4·C + c].
    const w = new Float32Array(18).map((_, i) => i);
    expect([...depthwiseConv2d(new Float32Array([1, 10]), ext(1, 1), 2, w, 3)]).toEqual([8, 90]);
  });
  it('simple gate scales by sqrt(Ci/2); sigmoid gate is A·sigmoid(B)', () => {
    expect([...applyGate(new Float32Array([2, 1, 3, 4]), 1, 4, 'simple')]).toEqual([2 * 3 * Math.SQRT2, 1 * 4 * Math.SQRT2].map(Math.fround));
    expect([...applyGate(new Float32Array([2, 0]), 1, 2, 'sigmoid')]).toEqual([1]);
  });
  it('the pyramid conv concatenates the gates in gate order', () => {
    const ci = 4;
    const u = randomArray(5 * 3 * ci, 1);
    const w = randomArray(2 * 9 * ci, 2);
    const both = pyramidConvReference(u, w, ext(5, 3), { inner: ci, kernel: 3, scales: [1, 0.5], gate: 'simple' });
    const first = pyramidConvReference(u, w.subarray(0, 9 * ci), ext(5, 3), { inner: ci, kernel: 3, scales: [1], gate: 'simple' });
    const second = pyramidConvReference(u, w.subarray(9 * ci), ext(5, 3), { inner: ci, kernel: 3, scales: [0.5], gate: 'simple' });
    for (let p = 0; p < 15; p++) {
      expect([...both.subarray(p * 4, p * 4 + 2)]).toEqual([...first.subarray(p * 2, p * 2 + 2)]);
      expect([...both.subarray(p * 4 + 2, p * 4 + 4)]).toEqual([...second.subarray(p * 2, p * 2 + 2)]);
    }
  });
  it('rejects inconsistent shapes with a stable code', () => {
    expect(() => pyramidConvReference(new Float32Array(3), new Float32Array(9), ext(1, 1), { inner: 4, kernel: 3, scales: [1], gate: 'simple' })).toThrow(
      /DELTAC_E_BAD_OPTION|U has 3 elements/,
    );
  });
});

async function runOnnx(l: LayerSpec, x: Float32Array, batch: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(serializeModel(onnxBlockModel(l, batch)));
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [batch, l.height * l.width, l.channels]) });
    return out['y']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('whole ΔConvBlock reference vs onnxruntime (standard-ONNX lowering)', () => {
  const random: LayerSpec[] = [
    { path: 'odd_simple', channels: 12, inner: 8, kernel: 3, scales: [1, 0.5], gate: 'simple', height: 5, width: 7, weights: randomWeights(12, 8, 3, 2, 10) },
    { path: 'odd_sigmoid', channels: 8, inner: 6, kernel: 5, scales: [1, 0.5], gate: 'sigmoid', height: 9, width: 4, weights: randomWeights(8, 6, 5, 2, 20) },
    { path: 'tiny_3x1', channels: 8, inner: 4, kernel: 5, scales: [1, 0.5], gate: 'simple', height: 3, width: 2, weights: randomWeights(8, 4, 5, 2, 30) },
  ];
  for (const l of random) {
    it(`${l.path} (${l.height}×${l.width}, K=${l.kernel}, ${l.gate}, batch 2)`, async () => {
      const x = randomArray(2 * l.height * l.width * l.channels, 99);
      const ref = deltaConvBlockReference(x, l.weights, ext(l.height, l.width, 2), l);
      const onnx = await runOnnx(l, x, 2);
      expect(maxRelError(ref, onnx)).toBeLessThan(1e-5);
    });
  }

  it('every layer of sd15-mini (32×24 latent) and pixart-mini (fixture weights)', async () => {
    const layers = [...fixtureLayers('sd15-mini'), ...fixtureLayers('pixart-mini')];
    expect(layers.length).toBe(20);
    for (const l of layers) {
      const x = randomArray(l.height * l.width * l.channels, 7);
      const ref = deltaConvBlockReference(x, l.weights, ext(l.height, l.width), l);
      const err = maxRelError(ref, await runOnnx(l, x, 1));
      if (process.env['DELTAC_VERBOSE']) console.log(l.path, err);
      expect(err, l.path).toBeLessThan(1e-5);
    }
  });
});
