/**
 * Latents → image, as diffusers decodes them for `output_type="np"`:
 *
 *   image = vae_decoder(latent_sample = latents / scaling_factor + shift_factor)   [1, 3, H, W]
 *   image = clip(image / 2 + 0.5, 0, 1), transposed to HWC float32
 *
 * scaling_factor (and shift_factor, for VAEs that have one) come from the folder's
 * vae_decoder/config.json (layout.ts).
 */
import { DeltacError } from '../ir/errors.js';
import type { VaeConfig } from './layout.js';
import { type ModelSession, castFloat32, outputOf, toFloat32 } from './session.js';

export interface DecodedImage {
  /** HWC float32 in [0, 1]. */
  data: Float32Array;
  height: number;
  width: number;
}

export async function decodeLatents(vae: ModelSession, latents: Float32Array, latentDims: number[], config: VaeConfig): Promise<DecodedImage> {
  const input = vae.inputs[0];
  if (!input) throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${vae.label} has no input`);
  const scaling = Math.fround(config.scalingFactor);
  const shift = Math.fround(config.shiftFactor);
  const scaled = Float32Array.from(latents, (v) => Math.fround(v / scaling) + shift);
  const out = outputOf(vae, await vae.run({ [input.name]: castFloat32(scaled, latentDims, input.dtype, `${vae.label} input "${input.name}"`) }));
  const [, channels, height, width] = out.dims as [number, number, number, number];
  if (out.dims.length !== 4 || channels !== 3) {
    throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${vae.label} gave an output of dims [${out.dims.join(', ')}]; an image [1, 3, H, W] was expected`);
  }
  const chw = toFloat32(out, `${vae.label} output`);
  const hwc = new Float32Array(height * width * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < height * width; p++) {
      const v = Math.fround(chw[c * height * width + p]! / 2) + 0.5;
      hwc[p * 3 + c] = Math.min(1, Math.max(0, v));
    }
  }
  return { data: hwc, height, width };
}
