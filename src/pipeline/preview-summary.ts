/**
 * The figures a preview reports, from its result: each UNet's step times (load, per
 * step, total, mean; and the mean of the steps after the first, which leaves out what
 * the first run pays once: allocations, and on a GPU the shader compilation), the
 * speed-up of the converted UNet over the original, and how far the two images are
 * apart. `deltac preview` (preview.json) and the browser page show the same numbers.
 */
import { compareArrays } from '../runtime/compare.js';
import { type RgbaImage, renderComparison } from './picture/compare-picture.js';
import type { PreviewResult } from './preview.js';
import type { DecodedImage } from './vae-decoding.js';

export interface StepTimes {
  name: string;
  loadMs: number;
  stepMs: number[];
  totalMs: number;
  meanStepMs: number;
  /** Mean of steps 2 … n (the first step's warm-up left out); the mean of all when there is one step. */
  warmMeanStepMs: number;
  /** The median step: the first run's warm-up (allocations) does not move it. */
  medianStepMs: number;
}

export interface PreviewFigures {
  models: StepTimes[];
  /** Original median step time over the converted one, with two models. */
  speedup?: number;
  /** The same with the mean over all steps. */
  meanSpeedup?: number;
  /** The same over steps 2 … n. */
  warmSpeedup?: number;
  /** Between the first two images (HWC in [0, 1]). */
  imageDifference?: { maxAbs: number; meanAbs: number };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export function stepTimes(name: string, loadMs: number, stepMs: number[]): StepTimes {
  const totalMs = stepMs.reduce((a, b) => a + b, 0);
  const sorted = [...stepMs].sort((a, b) => a - b);
  const medianStepMs = sorted.length ? (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2 : 0;
  return { name, loadMs, stepMs, totalMs, meanStepMs: mean(stepMs), warmMeanStepMs: mean(stepMs.length > 1 ? stepMs.slice(1) : stepMs), medianStepMs };
}

/** max |a − b| and mean |a − b| over every value (a NaN counts as ∞; images of different sizes are ∞ apart, the mean taken over the common values). */
export function imageDifference(a: DecodedImage, b: DecodedImage): { maxAbs: number; meanAbs: number } {
  const n = Math.min(a.data.length, b.data.length);
  const { maxAbs, meanAbs } = compareArrays(a.data.subarray(0, n), b.data.subarray(0, n));
  return { maxAbs: a.data.length === b.data.length ? maxAbs : Infinity, meanAbs };
}

export function previewFigures(result: PreviewResult): PreviewFigures {
  const models = result.variants.map((r) => stepTimes(r.name, r.loadMs, r.unetMs));
  if (models.length < 2) return { models };
  const [a, b] = result.variants as [PreviewResult['variants'][0], PreviewResult['variants'][0]];
  return {
    models,
    speedup: models[0]!.medianStepMs / models[1]!.medianStepMs,
    meanSpeedup: models[0]!.meanStepMs / models[1]!.meanStepMs,
    warmSpeedup: models[0]!.warmMeanStepMs / models[1]!.warmMeanStepMs,
    imageDifference: imageDifference(a.image, b.image),
  };
}

/** compare.png of a preview of two models (side by side, difference map, deviation plot); none for one model. */
export function comparisonPicture(result: PreviewResult): RgbaImage | undefined {
  if (result.variants.length !== 2) return undefined;
  const [a, b] = result.variants as [PreviewResult['variants'][0], PreviewResult['variants'][0]];
  return renderComparison(a.image, b.image, result.deviation[0]!, { original: 'ORIGINAL', delta: 'ΔCONV (DELTA)' });
}
