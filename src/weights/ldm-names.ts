/**
 * CompVis / LDM module names (`openaimodel.UNetModel` of SD1.x/SD2.x, sgm's SDXL
 * UNet, `control_model` of ControlNet) and the diffusers names ΔConvFusion
 * checkpoints use. LDM keeps the UNet in three lists, with n = layers_per_block:
 *
 *   input_blocks.0                          conv_in
 *   input_blocks.k  = [ResBlock, SpatialTransformer?] | [Downsample]
 *                     k = 1 + L·(n+1) + j,  j < n: level L's j-th block;  j = n: its downsampler
 *   middle_block    = [ResBlock, SpatialTransformer, ResBlock]
 *   output_blocks.k = [ResBlock, SpatialTransformer?, Upsample?]
 *                     k = U·(n+1) + j,  U counted from the bottom (diffusers' up_blocks.U)
 *
 * so that, for every layout (SD1.5 and SD2.1: n = 2, attention at levels 0–2;
 * SDXL: n = 2, attention at levels 1–2 only):
 *
 *   input_blocks.k.1   ↔ down_blocks.L.attentions.j    (L, j) = divmod(k − 1, n + 1)
 *   middle_block.1     ↔ mid_block.attentions.0
 *   output_blocks.k.1  ↔ up_blocks.U.attentions.j      (U, j) = divmod(k, n + 1)
 *
 * and everything inside the SpatialTransformer (`transformer_blocks.t.attn1`)
 * keeps its name. Levels without attention do not change the indices, so n is
 * all a layout needs; it is read from the checkpoint's diffusers names or, when
 * those do not tell, from the model's LDM names.
 */

export interface UNetLayout {
  /** layers_per_block: resnets (and attentions) per down level; up levels have one more. */
  layersPerBlock: number;
}

const LDM_BLOCK = /(?:^|\.)(?:(input_blocks)\.(\d+)\.1|(middle_block)\.1|(output_blocks)\.(\d+)\.1)\.(transformer_blocks\.\d+.*)$/;
const DIFFUSERS_ATTENTION = /(?:^|\.)(down_blocks|up_blocks)\.(\d+)\.attentions\.(\d+)(?:\.|$)/;

/** True for a module path in LDM naming (`…input_blocks.4.1.transformer_blocks.0`). */
export function isLdmPath(path: string): boolean {
  return LDM_BLOCK.test(path);
}

/**
 * The diffusers path of an LDM transformer-block (or deeper) path, without any
 * wrapper (`model.diffusion_model.`, `control_model.`); null when the path is not
 * an LDM attention path or names a downsampler slot.
 */
export function ldmToDiffusers(path: string, layout: UNetLayout): string | null {
  const m = LDM_BLOCK.exec(path);
  const n = layout.layersPerBlock;
  if (!m || !(n >= 1)) return null;
  const rest = m[6]!;
  if (m[3]) return `mid_block.attentions.0.${rest}`;
  if (m[1]) {
    const k = Number(m[2]) - 1;
    if (k < 0 || k % (n + 1) === n) return null;
    return `down_blocks.${Math.floor(k / (n + 1))}.attentions.${k % (n + 1)}.${rest}`;
  }
  const k = Number(m[5]);
  return `up_blocks.${Math.floor(k / (n + 1))}.attentions.${k % (n + 1)}.${rest}`;
}

/**
 * layers_per_block from diffusers paths (a checkpoint's blocks): down levels hold
 * attentions 0…n−1, up levels 0…n. null when the paths have no UNet attentions.
 */
export function layoutFromDiffusers(paths: Iterable<string>): UNetLayout | null {
  let down = -1;
  let up = -1;
  for (const p of paths) {
    const m = DIFFUSERS_ATTENTION.exec(p);
    if (!m) continue;
    if (m[1] === 'down_blocks') down = Math.max(down, Number(m[3]));
    else up = Math.max(up, Number(m[3]));
  }
  if (down >= 0 && up >= 0 && up !== down + 1) return null;
  const n = down >= 0 ? down + 1 : up;
  return n >= 1 ? { layersPerBlock: n } : null;
}

/**
 * layers_per_block from a whole UNet's LDM paths: every level with attention has
 * n attention slots in input_blocks and n + 1 in output_blocks, so n = I / (O − I)
 * over the distinct slots; it must also leave every input slot off the
 * downsampler positions. null when the paths do not determine it (e.g. a
 * ControlNet, which has no output_blocks).
 */
export function layoutFromLdm(paths: Iterable<string>): UNetLayout | null {
  const inputs = new Set<number>();
  const outputs = new Set<number>();
  for (const p of paths) {
    const m = LDM_BLOCK.exec(p);
    if (m?.[1]) inputs.add(Number(m[2]));
    else if (m?.[4]) outputs.add(Number(m[5]));
  }
  const extra = outputs.size - inputs.size;
  if (!inputs.size || extra <= 0 || inputs.size % extra !== 0) return null;
  const n = inputs.size / extra;
  for (const k of inputs) if (k < 1 || (k - 1) % (n + 1) === n) return null;
  return { layersPerBlock: n };
}
