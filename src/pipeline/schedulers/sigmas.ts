/**
 * The σ-space pieces shared by EulerDiscrete and DPM-Solver: σ_t = √((1−ᾱ_t)/ᾱ_t), the
 * alternative σ ladders (Karras, exponential, λ-uniform), and the map back from a σ to a
 * fractional training timestep (interpolating log σ).
 */
import { f32, npLinspace, npLogF32 } from './numerics.js';

/** σ_t = √((1 − ᾱ_t) / ᾱ_t) for every training timestep, float32 (ascending in t). */
export function trainingSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** log σ as numpy computes it on a float32 array (float32 results, numpy's own log). */
export function logSigmas(sigmas: Float32Array): Float32Array {
  return sigmas.map(npLogF32);
}

/** Karras et al. (2022) σ ladder, ρ = 7: σ_i = (σ_max^{1/ρ} + i/(n−1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** σ evenly spaced in log σ from σ_max down to σ_min. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return npLinspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/**
 * The fractional training timestep of σ: the index pair whose log σ bracket log σ, and
 * the linear weight between them (clamped to the ends), as diffusers' `_sigma_to_t`.
 */
export function sigmaToT(sigma: number, logs: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // the first index of the largest running count of log σ_i ≤ log σ (0 when there is none)
  let count = 0;
  let best = 0;
  let low = 0;
  for (let i = 0; i < logs.length; i++) {
    if (logSigma - logs[i]! >= 0) count++;
    if (count > best) {
      best = count;
      low = i;
    }
  }
  low = Math.min(low, logs.length - 2);
  const lo = logs[low]!;
  const hi = logs[low + 1]!;
  const w = Math.min(Math.max((lo - logSigma) / f32(lo - hi), 0), 1);
  return (1 - w) * low + w * (low + 1);
}
