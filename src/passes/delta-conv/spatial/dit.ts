/**
 * DiT (PixArt) H and W: tokens come from the latent through a patch-embedding
 * Conv (kernel = stride = patch size) → Reshape [B, C, h·w] → Transpose(0, 2, 1),
 * so H, W are the Conv output's spatial dims: the latent size divided by the patch.
 */
import type { Node } from '../../../ir/node.js';

/** A description when `producer` (of the flattened 4-D tensor) is a patch embedding, else null. */
export function ditPatchEmbedding(producer: Node | null | undefined): string | null {
  if (producer?.opType !== 'Conv') return null;
  const strides = producer.getInts('strides') ?? [1, 1];
  const kernel = producer.getInts('kernel_shape') ?? [];
  if (!strides.some((s) => s > 1) || kernel.join(',') !== strides.join(',')) return null;
  return `DiT patch embedding ${producer.name || 'Conv'} (stride ${strides.join('×')}) output`;
}
