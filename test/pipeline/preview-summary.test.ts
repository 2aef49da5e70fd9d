/**
 * The figures `deltac preview` and the browser page report (src/pipeline/preview-summary.ts):
 * step times with the first step's warm-up left out of the warm mean, speed-ups over all
 * steps and over steps 2 … n, and the image difference (a NaN or a size mismatch is ∞).
 */
import { describe, expect, it } from 'vitest';
import type { PreviewResult } from '../../src/pipeline/preview.js';
import { imageDifference, previewFigures, stepTimes } from '../../src/pipeline/preview-summary.js';

const image = (values: number[]) => ({ data: Float32Array.from(values), height: 1, width: values.length / 3 });

describe('preview figures', () => {
  it('step times: total, mean, and the mean of steps 2 … n (all of them when there is one)', () => {
    expect(stepTimes('original', 5, [30, 10, 20])).toEqual({ name: 'original', loadMs: 5, stepMs: [30, 10, 20], totalMs: 60, meanStepMs: 20, warmMeanStepMs: 15, medianStepMs: 20 });
    expect(stepTimes('delta', 1, [7])).toMatchObject({ totalMs: 7, meanStepMs: 7, warmMeanStepMs: 7 });
  });

  it('image difference: max and mean |a − b|; a NaN or another size is ∞', () => {
    expect(imageDifference(image([0, 0.5, 1]), image([0.25, 0.5, 0.5]))).toEqual({ maxAbs: 0.5, meanAbs: 0.25 });
    expect(imageDifference(image([0, NaN, 1]), image([0, 0, 1])).maxAbs).toBe(Infinity);
    expect(imageDifference(image([0, 0, 1]), image([0, 0, 1, 0, 0, 1])).maxAbs).toBe(Infinity);
  });

  it('two models: speed-up original / converted on the median step, over all steps and over steps 2 … n', () => {
    const variant = (name: string, unetMs: number[], values: number[]) => ({ name, image: image(values), latents: new Float32Array(), timesteps: [3, 2, 1], unetMs, loadMs: 1 });
    const result = { variants: [variant('original', [90, 40, 40], [0, 0, 0]), variant('delta', [30, 20, 20], [0, 0.1, 0])], deviation: [], truncated: [], guidance: true } as PreviewResult;
    const f = previewFigures(result);
    expect(f.models.map((m) => m.name)).toEqual(['original', 'delta']);
    expect(f.speedup).toBe(2);
    expect(f.meanSpeedup).toBeCloseTo(170 / 70, 12);
    expect(f.warmSpeedup).toBe(2);
    expect(f.imageDifference!.maxAbs).toBeCloseTo(0.1, 6);
    expect(previewFigures({ ...result, variants: [result.variants[0]!] })).toEqual({ models: [f.models[0]] });
  });
});
