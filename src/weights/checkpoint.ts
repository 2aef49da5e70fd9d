/**
 * ΔConvFusion checkpoints (SPEC.md §2): safetensors files with one ΔConvBlock per
 * transformer block, keyed by the block's diffusers module path:
 *
 *   {block}.conv1.conv_up.weight [Ci, C]        {block}.conv1.conv_up.bias [Ci]
 *   {block}.conv1.gates.{g}.conv_spatial.weight [K, K, Ci]
 *   {block}.conv1.conv_out.weight [C, S·Ci/2]   {block}.conv1.conv_out.bias [C]
 *   {block}.conv1.conv_pool.weight [C, C]       {block}.conv1.conv_pool.bias [C]
 *
 * This module groups the keys per block, checks shapes, and reads the tensors.
 */
import { DeltacError } from '../ir/errors.js';
import type { Tensor } from '../ir/tensor.js';
import { assertFinite } from './nonfinite.js';
import { SafetensorsFile, type SafetensorsEntry } from './safetensors.js';

/** Wrapper prefixes that some checkpoints put before the denoiser's module paths. */
export const KNOWN_PREFIXES = ['denoiser.', 'model.diffusion_model.', 'model.', 'unet.', 'transformer.', 'module.'];

export interface CheckpointBlock {
  /** Key prefix as stored (e.g. `unet.down_blocks.0.attentions.0.transformer_blocks.0`). */
  prefix: string;
  /** The prefix without a known wrapper (`down_blocks.0.attentions.0.transformer_blocks.0`). */
  path: string;
  upWeight?: SafetensorsEntry;
  upBias?: SafetensorsEntry;
  gates: SafetensorsEntry[];
  outWeight?: SafetensorsEntry;
  outBias?: SafetensorsEntry;
  poolWeight?: SafetensorsEntry;
  poolBias?: SafetensorsEntry;
}

/** Shapes that follow from a block's tensors. */
export interface BlockGeometry {
  channels: number;
  inner: number;
  kernel: number;
  gates: number;
}

export interface BlockTensors {
  upWeight: Tensor;
  upBias: Tensor;
  gates: Tensor[];
  outWeight: Tensor;
  outBias: Tensor;
  poolWeight: Tensor;
  poolBias: Tensor;
}

/** Checkpoint tensors from this size on stay in the file until they are written (conv_up, conv_out, conv_pool weights). */
const DEFER_FROM_BYTES = 64 * 1024;

const KEY = /^(.*)\.conv1\.(?:(conv_up|conv_out|conv_pool)\.(weight|bias)|gates\.(\d+)\.conv_spatial\.weight)$/;

export class Checkpoint {
  readonly blocks = new Map<string, CheckpointBlock>();
  /** Keys that are not ΔConvBlock weights. */
  readonly otherKeys: string[] = [];

  constructor(readonly file: SafetensorsFile) {
    const gateMaps = new Map<string, Map<number, SafetensorsEntry>>();
    for (const entry of file.entries.values()) {
      const m = KEY.exec(entry.key);
      if (!m) {
        this.otherKeys.push(entry.key);
        continue;
      }
      const prefix = m[1]!;
      let block = this.blocks.get(prefix);
      if (!block) {
        block = { prefix, path: stripPrefix(prefix), gates: [] };
        this.blocks.set(prefix, block);
        gateMaps.set(prefix, new Map());
      }
      if (m[4] !== undefined) {
        gateMaps.get(prefix)!.set(Number(m[4]), entry);
        continue;
      }
      const field = `${{ conv_up: 'up', conv_out: 'out', conv_pool: 'pool' }[m[2]!]}${m[3] === 'weight' ? 'Weight' : 'Bias'}` as
        | 'upWeight'
        | 'upBias'
        | 'outWeight'
        | 'outBias'
        | 'poolWeight'
        | 'poolBias';
      block[field] = entry;
    }
    for (const [prefix, gates] of gateMaps) {
      const indices = [...gates.keys()].sort((a, b) => a - b);
      indices.forEach((g, i) => {
        if (g !== i) {
          throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `${prefix}.conv1.gates.${i}.conv_spatial.weight is missing (gates must be numbered 0…S-1)`);
        }
      });
      this.blocks.get(prefix)!.gates = indices.map((g) => gates.get(g)!);
    }
  }

  static open(file: string): Checkpoint {
    return new Checkpoint(SafetensorsFile.open(file));
  }

  get path(): string {
    return this.file.path;
  }

  /** Checks that a block is complete and consistent; returns its geometry. */
  geometry(block: CheckpointBlock, layer: string): BlockGeometry {
    const key = (suffix: string) => `${block.prefix}.conv1.${suffix}`;
    const need = <T>(v: T | undefined, suffix: string): T => {
      if (!v) throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `layer ${layer}: the checkpoint has no "${key(suffix)}"`, { layer, key: key(suffix) });
      return v;
    };
    const up = need(block.upWeight, 'conv_up.weight');
    if (up.shape.length !== 2) throw shapeError(layer, up.key, up.shape, '[Ci, C]');
    const [inner, channels] = up.shape as [number, number];
    if (inner === 0 || channels === 0) throw shapeError(layer, up.key, up.shape, '[Ci, C] with non-zero Ci and C');
    if (block.gates.length === 0) throw new DeltacError('DELTAC_E_WEIGHT_MISSING', `layer ${layer}: the checkpoint has no "${key('gates.0.conv_spatial.weight')}"`);
    const g0 = block.gates[0]!;
    const kernel = g0.shape[0]!;
    const gates = block.gates.length;
    const expect = (e: SafetensorsEntry | undefined, suffix: string, shape: number[]) => {
      const entry = need(e, suffix);
      if (entry.shape.join(',') !== shape.join(',')) throw shapeError(layer, entry.key, entry.shape, `[${shape.join(', ')}]`);
    };
    if (inner % 2 !== 0) throw shapeError(layer, up.key, up.shape, '[Ci, C] with an even Ci (the gate splits it in halves)');
    if (kernel % 2 !== 1) throw shapeError(layer, g0.key, g0.shape, '[K, K, Ci] with an odd K');
    expect(block.upBias, 'conv_up.bias', [inner]);
    block.gates.forEach((g, i) => expect(g, `gates.${i}.conv_spatial.weight`, [kernel, kernel, inner]));
    expect(block.outWeight, 'conv_out.weight', [channels, (gates * inner) / 2]);
    expect(block.outBias, 'conv_out.bias', [channels]);
    expect(block.poolWeight, 'conv_pool.weight', [channels, channels]);
    expect(block.poolBias, 'conv_pool.bias', [channels]);
    return { channels, inner, kernel, gates };
  }

  /** Reads a block's tensors (bytes as stored; callers cast). */
  read(block: CheckpointBlock): BlockTensors {
    const t = (e: SafetensorsEntry | undefined) => this.readTensor(e!);
    return {
      upWeight: t(block.upWeight),
      upBias: t(block.upBias),
      gates: block.gates.map((g) => t(g)),
      outWeight: t(block.outWeight),
      outBias: t(block.outBias),
      poolWeight: t(block.poolWeight),
      poolBias: t(block.poolBias),
    };
  }

  /**
   * One tensor, scanned for NaN/±Inf as it is read (DELTAC_E_WEIGHTS_NONFINITE), in
   * place. Tensors of DEFER_FROM_BYTES or more are then let go: the model holds them
   * as deferred tensors that read the file again when needed (the saver copies them
   * file to file), so a conversion's memory does not grow with the checkpoint
   * (SDXL base: 829 MB in fp32).
   */
  protected readTensor(e: SafetensorsEntry): Tensor {
    const where = `checkpoint "${this.file.path}"`;
    const hint = 'the checkpoint is corrupt (a diverged training run or a bad export): re-export or re-download it';
    if (e.end - e.begin < DEFER_FROM_BYTES) {
      const tensor = this.file.tensor(e.key);
      assertFinite(tensor, e.key, where, hint);
      return tensor;
    }
    const deferred = this.file.deferredTensor(e.key, true);
    assertFinite(deferred, e.key, where, hint, this.file.scanNonFinite(e.key));
    return deferred;
  }

  /** Blocks in canonical diffusers order (down, mid, up; indices numerically). */
  canonicalOrder(): CheckpointBlock[] {
    return [...this.blocks.values()].sort((a, b) => compareModulePaths(a.path, b.path));
  }
}

/** A block's gate weights stacked in gate order, [S, K, K, Ci] float32, as the PyramidConvBlock takes them. */
export function stackedGates(t: BlockTensors, geo: BlockGeometry): Float32Array {
  const size = geo.kernel * geo.kernel * geo.inner;
  const out = new Float32Array(geo.gates * size);
  t.gates.forEach((g, i) => out.set(g.toFloat32(), i * size));
  return out;
}

function shapeError(layer: string, key: string, actual: number[], expected: string): DeltacError {
  return new DeltacError(
    'DELTAC_E_WEIGHT_SHAPE',
    `layer ${layer}: "${key}" is [${actual.join(', ')}], expected ${expected}`,
    { layer, key, actual, expected },
  );
}

export function stripPrefix(path: string): string {
  for (const p of KNOWN_PREFIXES) if (path.startsWith(p)) return path.slice(p.length);
  return path;
}

const SECTION: Record<string, number> = { down_blocks: 0, mid_block: 1, up_blocks: 2 };

/** Orders module paths as diffusers executes them: down, mid, up, then numeric indices. */
export function compareModulePaths(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  const sa = SECTION[pa[0]!] ?? 3;
  const sb = SECTION[pb[0]!] ?? 3;
  if (sa !== sb) return sa - sb;
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return 0;
}
