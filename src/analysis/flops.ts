/**
 * FLOPs and activation memory of self-attention vs the ΔConvBlock, per layer.
 *
 * Counting convention: FLOPs = 2 × multiply-accumulates of matrix products and
 * convolutions, plus 1 FLOP per element for each element-wise step (bias add,
 * pooling sum, gate product, final add); softmax counts 3 per score (exp, sum,
 * divide), sigmoid 4 per element, bilinear upsampling 7 per output element
 * (4 multiplies, 3 adds). Batch size 1. Activation memory counts the largest
 * intermediate tensors that must exist at once, in bytes of the model's dtype.
 *
 * Baselines (seed §E, §F): local attention (NA) with a K×K window counts like
 * self-attention with min(K,H)·min(K,W) keys per query (the window shifts inward
 * at the borders, as in NATTEN), its score tensor materialised. Flash attention
 * keeps no N×N matrix: its memory is q, k, v and the output plus two float32
 * softmax statistics per row and head. Memory at batch B is B times batch 1.
 */
import type { GateKind } from '../passes/delta-conv/op.js';

export interface AttentionShape {
  /** Tokens N = H·W. */
  tokens: number;
  channels: number;
  heads: number;
  /** Key/value tokens (N for self-attention). */
  kvTokens?: number;
}

export interface BlockShape {
  height: number;
  width: number;
  channels: number;
  inner: number;
  kernel: number;
  scales: number[];
  gate: GateKind;
}

export interface Cost {
  flops: number;
  /** Peak bytes of intermediate activations (batch 1). */
  activationBytes: number;
}

export function attentionCost(a: AttentionShape, bytesPerElement = 4): Cost {
  const n = a.tokens;
  const m = a.kvTokens ?? n;
  const c = a.channels;
  const projections = 3 * 2 * n * c * c; // to_q, to_k, to_v
  const scores = 2 * n * m * c; // Q·Kᵀ over all heads
  const softmax = 3 * a.heads * n * m;
  const weighted = 2 * n * m * c; // P·V
  const out = 2 * n * c * c + n * c; // to_out + bias
  // q, k, v and the full score matrix of all heads live at once (unfused attention).
  const activation = (3 * n * c + a.heads * n * m) * bytesPerElement;
  return { flops: projections + scores + softmax + weighted + out, activationBytes: activation };
}

export function blockCost(b: BlockShape, bytesPerElement = 4): Cost {
  const n = b.height * b.width;
  const c = b.channels;
  const ci = b.inner;
  const half = ci / 2;
  const s = b.scales.length;
  let flops = 2 * n * c * ci + n * ci; // conv_up + bias
  let gateActivations = 0;
  for (const scale of b.scales) {
    const ng = Math.floor(b.height * scale) * Math.floor(b.width * scale);
    if (scale !== 1) flops += n * ci; // pooling: every input element summed once
    flops += 2 * ng * ci * b.kernel * b.kernel; // depthwise conv
    flops += b.gate === 'simple' ? ng * half : ng * half * 5; // A·B  |  A·sigmoid(B)
    if (scale !== 1) flops += 7 * n * half; // bilinear upsampling
    gateActivations += ng * ci + n * half;
  }
  flops += 2 * n * (s * half) * c + n * c; // conv_out + bias
  flops += n * c + 2 * c * c + c; // mean, conv_pool, bias
  flops += n * c; // Y + P
  const activation = (n * ci + gateActivations + n * c) * bytesPerElement;
  return { flops, activationBytes: activation };
}

export interface LocalAttentionShape {
  height: number;
  width: number;
  channels: number;
  heads: number;
  /** K: the window is K×K tokens around the query. */
  window: number;
}

/** Local (neighbourhood) attention over a K×K window: self-attention's count with min(K,H)·min(K,W) keys per query. */
export function localAttentionCost(a: LocalAttentionShape, bytesPerElement = 4): Cost {
  const kvTokens = Math.min(a.window, a.height) * Math.min(a.window, a.width);
  return attentionCost({ tokens: a.height * a.width, channels: a.channels, heads: a.heads, kvTokens }, bytesPerElement);
}

/** Activation bytes of self-attention run with a flash kernel (no N×N matrix), at batch `batch`. */
export function flashAttentionBytes(a: AttentionShape, batch: number, bytesPerElement = 4): number {
  return batch * (4 * a.tokens * a.channels * bytesPerElement + 2 * a.heads * a.tokens * 4);
}
