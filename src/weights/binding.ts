/**
 * Which checkpoint block belongs to which self-attention layer:
 *  1. an explicit map (`--map file.json`: {"<layer>": "<checkpoint block>"}),
 *  2. module paths from node names (suffix match, so wrapper prefixes like `/m/`
 *     in the model or `unet.` in the checkpoint do not matter); CompVis/LDM names
 *     (`input_blocks.4.1.transformer_blocks.0`) are matched through their diffusers
 *     equivalents (ldm-names.ts),
 *  3. for layers without names: canonical diffusers block order (down, mid, up)
 *     against the layers' order in the graph.
 */
import fs from 'node:fs';
import { DeltacError } from '../ir/errors.js';
import { type Checkpoint, type CheckpointBlock } from './checkpoint.js';
import { isLdmPath, layoutFromDiffusers, layoutFromLdm, ldmToDiffusers } from './ldm-names.js';

export interface LayerRef {
  /** Stable layer id: the block path when known, else `layer<index>`. */
  id: string;
  blockPath: string | null;
  modulePath: string | null;
  /** Position among the self-attention layers in graph order. */
  index: number;
}

export type BindingMethod = 'map' | 'name' | 'structure';

export interface Binding {
  block: CheckpointBlock;
  method: BindingMethod;
}

/** A layer with no weights, and the checkpoint block it would need. */
export interface MissingLayer extends LayerRef {
  /**
   * Key prefix its weights would have in this checkpoint: the diffusers path for an
   * LDM-named layer (`input_blocks.1.1.transformer_blocks.0` → `down_blocks.0.attentions.0.transformer_blocks.0`),
   * after the wrapper the checkpoint's blocks share (`unet.`); null for a layer without a name.
   */
  expectedBlock: string | null;
}

export interface BindingResult {
  bound: Map<string, Binding>;
  /** Layers with no weights. */
  missing: MissingLayer[];
  /** Checkpoint blocks no layer uses. */
  unusedBlocks: string[];
}

export function readLayerMap(file: string): Record<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DeltacError('DELTAC_E_WEIGHT_MAP', `cannot read layer map "${file}": ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
    throw new DeltacError('DELTAC_E_WEIGHT_MAP', `layer map "${file}" must be a JSON object of "layer": "checkpoint block" strings`);
  }
  return raw as Record<string, string>;
}

const components = (p: string) => p.split('.').filter(Boolean);

/** The last two components of a path (`transformer_blocks.0`). */
const lastTwo = (p: string) => components(p).slice(-2).join('.');

/**
 * Length of the match when one path is the other plus a wrapper prefix (`m.`,
 * `unet.`, `model.diffusion_model.` …), else 0. A prefix holding module structure
 * (`down_blocks.0.attentions.0`) is not a wrapper: `transformer_blocks.0` of a DiT
 * does not match `down_blocks.0.attentions.0.transformer_blocks.0` of a UNet.
 */
function suffixMatch(a: string, b: string): number {
  const x = components(a);
  const y = components(b);
  const n = Math.min(x.length, y.length);
  for (let i = 1; i <= n; i++) if (x[x.length - i] !== y[y.length - i]) return 0;
  const wrapper = (x.length > n ? x : y).slice(0, Math.abs(x.length - y.length));
  return wrapper.every((c) => !/^\d+$/.test(c)) ? n : 0;
}

/**
 * The names a layer may have in the checkpoint: its block path and, for an LDM
 * path, the diffusers path of the same block (layers_per_block from the model's
 * LDM names, else from the checkpoint's diffusers names).
 */
function checkpointNames(layers: LayerRef[], ckpt: Checkpoint): (layer: LayerRef) => string[] {
  const ldm = layers.map((l) => l.blockPath).filter((p): p is string => !!p && isLdmPath(p));
  const layout = ldm.length ? (layoutFromLdm(ldm) ?? layoutFromDiffusers([...ckpt.blocks.values()].map((b) => b.path))) : null;
  return (layer) => {
    if (!layer.blockPath) return [];
    const diffusers = layout ? ldmToDiffusers(layer.blockPath, layout) : null;
    return diffusers ? [diffusers, layer.blockPath] : [layer.blockPath];
  };
}

/** The wrapper (`unet.`) every block of the checkpoint has before its path, or '' when they differ. */
function sharedWrapper(ckpt: Checkpoint): string {
  const wrappers = new Set([...ckpt.blocks.values()].map((b) => b.prefix.slice(0, b.prefix.length - b.path.length)));
  return wrappers.size === 1 ? [...wrappers][0]! : '';
}

export function bindLayers(layers: LayerRef[], ckpt: Checkpoint, map?: Record<string, string>): BindingResult {
  const bound = new Map<string, Binding>();
  const used = new Map<CheckpointBlock, string>();
  const assign = (layer: LayerRef, block: CheckpointBlock, method: BindingMethod) => {
    const other = used.get(block);
    if (other !== undefined && other !== layer.id) {
      throw new DeltacError(
        'DELTAC_E_WEIGHT_MAP',
        `checkpoint block "${block.prefix}" would be used by two layers (${other} and ${layer.id}); fix the --map file`,
      );
    }
    used.set(block, layer.id);
    bound.set(layer.id, { block, method });
  };

  if (map) {
    for (const [key, target] of Object.entries(map)) {
      const layer = layers.find((l) => l.id === key || l.blockPath === key || l.modulePath === key || `layer${l.index}` === key);
      if (!layer) {
        throw new DeltacError('DELTAC_E_WEIGHT_MAP', `--map names layer "${key}", which is not a self-attention layer of this model (layers: ${layers.map((l) => l.id).join(', ')})`);
      }
      const block = ckpt.blocks.get(target) ?? [...ckpt.blocks.values()].find((b) => b.path === target);
      if (!block) throw new DeltacError('DELTAC_E_WEIGHT_MAP', `--map assigns "${target}" to ${key}, but the checkpoint has no such block`);
      assign(layer, block, 'map');
    }
  }

  // By name: the longest suffix match; ties are ambiguous. A match spans at least the last
  // two components, so a layer only tries the blocks that end like one of its names
  // (linear in the number of layers, not quadratic).
  const namesOf = checkpointNames(layers, ckpt);
  const byTail = new Map<string, CheckpointBlock[]>();
  for (const block of ckpt.blocks.values()) {
    const key = lastTwo(block.prefix);
    const list = byTail.get(key);
    if (list) list.push(block);
    else byTail.set(key, [block]);
  }
  for (const layer of layers) {
    if (bound.has(layer.id) || !layer.blockPath) continue;
    let best: CheckpointBlock | null = null;
    let bestLen = 0;
    let tie = false;
    const names = namesOf(layer);
    for (const block of new Set(names.flatMap((name) => byTail.get(lastTwo(name)) ?? []))) {
      if (used.has(block)) continue;
      const len = Math.max(0, ...names.map((name) => suffixMatch(name, block.prefix)));
      if (len < 2) continue;
      if (len > bestLen) {
        best = block;
        bestLen = len;
        tie = false;
      } else if (len === bestLen) tie = true;
    }
    if (best && tie) {
      throw new DeltacError('DELTAC_E_WEIGHT_MAP', `layer ${layer.id} matches several checkpoint blocks equally well; disambiguate with --map`);
    }
    if (best) assign(layer, best, 'name');
  }

  // By structure: layers without names, in graph order, against canonical block order.
  const unnamed = layers.filter((l) => !bound.has(l.id) && !l.blockPath);
  if (unnamed.length) {
    const free = ckpt.canonicalOrder().filter((b) => !used.has(b));
    if (free.length === unnamed.length) unnamed.forEach((l, i) => assign(l, free[i]!, 'structure'));
  }

  const wrapper = sharedWrapper(ckpt);
  return {
    bound,
    missing: layers.filter((l) => !bound.has(l.id)).map((l) => {
      const name = namesOf(l)[0];
      return { ...l, expectedBlock: name === undefined ? null : `${wrapper}${name}` };
    }),
    unusedBlocks: [...ckpt.blocks.values()].filter((b) => !used.has(b)).map((b) => b.prefix),
  };
}
