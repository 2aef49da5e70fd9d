/**
 * DiT (PixArt) H and W: tokens come from the latent through a patch-embedding
 * Conv (kernel = stride = patch size) → Reshape [B, C, h·w] → Transpose(0, 2, 1),
 * so H, W are the Conv output's spatial dims: the latent size divided by the patch.
 */
import type { FloatOp } from '../../quantization/reading.js';

/** A description when `producer` (of the flattened 4-D tensor; a QLinearConv or ConvInteger reads as Conv) is a patch embedding, else null. */
export function ditPatchEmbedding(producer: FloatOp | null | undefined): string | null {
  if (producer?.opType !== 'Conv') return null;
  const conv = producer.node;
  const strides = conv.getInts('strides') ?? [1, 1];
  const kernel = conv.getInts('kernel_shape') ?? [];
  if (!strides.some((s) => s > 1) || kernel.join(',') !== strides.join(',')) return null;
  return `DiT patch embedding ${conv.name || conv.opType} (stride ${strides.join('×')}) output`;
}
