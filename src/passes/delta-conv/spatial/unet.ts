/**
 * UNet (SD1.5, SDXL) H and W: each Transformer2DModel flattens its [B, C, H, W]
 * input into tokens — proj_in 1×1 Conv → Transpose(0, 2, 3, 1) → Reshape
 * [B, H·W, C] (SD1.5), or Transpose → Reshape → proj_in Linear with
 * use_linear_projection (SDXL); onnxruntime-optimized graphs keep it
 * channels-last ([B, H, W, C] from an NhwcConv proj_in). Every transformer block
 * of that model (SDXL has up to ten per level) shares those H, W.
 */
import type { FloatOp } from '../../quantization/reading.js';

export function unetDescription(producer: FloatOp | null | undefined, channelsLast: boolean): string {
  const conv = producer?.opType === 'Conv' || producer?.opType === 'NhwcConv' ? producer.node : null;
  const proj = conv ? `proj_in ${conv.opType} ${conv.name}`.trim() : 'Transformer2DModel input';
  return `UNet ${proj} [B,C,H,W] (flattened ${channelsLast ? 'channels-last' : 'channels-first'})`;
}
