/**
 * The self-attention layers `deltac analyze` looks at: every self-attention the
 * matcher finds, with its token grid H×W from the spatial finder, evaluated at the
 * input sizes being analysed.
 */
import { DeltacError } from '../../ir/errors.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { type InferResult, runInference } from '../../ir/shape-inference/infer.js';
import { findAttention } from '../../passes/attention/find-attention.js';
import { type AttentionMatch, MatchContext } from '../../passes/attention/match.js';
import { findSpatialSource, type ModelFamily } from '../../passes/delta-conv/spatial/index.js';

export interface AttentionLayer {
  /** Position among the model's self-attention layers (before --layers filtering). */
  index: number;
  /** Module path (`down_blocks.0.attentions.0.transformer_blocks.0.attn1`) or `self_attention_<i>`. */
  name: string;
  match: AttentionMatch;
  family: ModelFamily;
  height: number;
  width: number;
  /** The Softmax whose output holds the probabilities, when the pattern has one. */
  softmax: Node | null;
}

export interface FoundLayers {
  layers: AttentionLayer[];
  /** Every self-attention of the model in graph order (before --layers filtering): what the checkpoint binding sees. */
  selfs: AttentionMatch[];
  env: InferResult;
  ctx: MatchContext;
}

/** Glob (`*`) or substring match of a layer name. */
export function layerFilter(pattern: string | undefined): (name: string) => boolean {
  if (!pattern) return () => true;
  const re = new RegExp(pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
  return (name) => re.test(name);
}

export function findLayers(model: Model, bindings: Record<string, number>, pattern?: string): FoundLayers {
  const env = runInference(model, { bindings });
  const ctx = new MatchContext(env);
  const found = findAttention(model, env);
  const self = found.matches.filter((m) => m.kind === 'self');
  if (!self.length) {
    throw new DeltacError(
      'DELTAC_E_NO_SELF_ATTENTION',
      `the model has no self-attention layers to analyse (${found.matches.length} cross-attention module(s) found)`,
    );
  }
  const barriers = new Set(found.matches.map((m) => m.output));
  const keep = layerFilter(pattern);
  const layers: AttentionLayer[] = [];
  self.forEach((match, index) => {
    const name = match.modulePath ?? `self_attention_${index}`;
    if (!keep(name)) return;
    const src = findSpatialSource(match.input, ctx, barriers);
    const s4 = src ? ctx.shape(src.tensor) : null;
    const h = src && s4 ? s4[src.hAxis] : null;
    const w = src && s4 ? s4[src.wAxis] : null;
    if (!src || typeof h !== 'number' || typeof w !== 'number') {
      throw new DeltacError('DELTAC_E_SPATIAL_DIMS', `layer ${name}: its token grid H×W could not be determined${src ? ` (${src.description} has no static size at these input sizes)` : ''}`);
    }
    const softmax = match.nodes.find((n) => n.opType === 'Softmax' && n.domain === '') ?? null;
    layers.push({ index, name, match, family: src.family, height: h, width: w, softmax });
  });
  if (!layers.length) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `--layers "${pattern}" matches none of the ${self.length} self-attention layers (e.g. ${self[0]!.modulePath ?? 'self_attention_0'})`);
  }
  return { layers, selfs: self, env, ctx };
}

/** The layers' distinct token grids [H, W], largest first. */
function distinctGrids(layers: AttentionLayer[]): (readonly [number, number])[] {
  return [...new Map(layers.map((l) => [`${l.height}x${l.width}`, [l.height, l.width] as const])).values()].sort((a, b) => b[0] * b[1] - a[0] * a[1]);
}

/**
 * UNet levels halve exactly (a 25×25 latent becomes 13×13, and the up path's
 * 26×26 no longer matches): the distinct grids, largest first, must each be twice
 * the next. Returns a sentence saying what is wrong, or null.
 */
export function gridProblem(layers: AttentionLayer[]): string | null {
  const sizes = distinctGrids(layers);
  for (let i = 1; i < sizes.length; i++) {
    const [h0, w0] = sizes[i - 1]!;
    const [h1, w1] = sizes[i]!;
    if (h1 * 2 !== h0 || w1 * 2 !== w0) return `its attention grids ${h0}×${w0} → ${h1}×${w1} do not halve exactly`;
  }
  return null;
}

/**
 * The image size (pixels, [height, width]) the layers' UNet levels need a multiple
 * of: 8 (latent) × the first grid's stride × 2 per further level; null for one level.
 */
export function pixelMultiple(layers: AttentionLayer[], latent: [number, number] | null): [number, number] | null {
  const sizes = distinctGrids(layers);
  if (sizes.length < 2) return null;
  const [h0, w0] = sizes[0]!;
  const stride = (lat: number | undefined, g: number) => (lat && lat % g === 0 ? lat / g : 1);
  const levels = 2 ** (sizes.length - 1);
  return [8 * stride(latent?.[0], h0) * levels, 8 * stride(latent?.[1], w0) * levels];
}

/**
 * com.microsoft.MultiHeadAttention nodes with packed QKV ([B, N, heads, 3, d] in
 * `query`) or packed KV ([B, L, heads, 2, d] in `key`), which onnxruntime's CPU
 * provider does not run: one line per node, named by its self-attention layer.
 */
export function packedAttentionLayers(model: Model, layers: AttentionLayer[]): string[] {
  const out: string[] = [];
  for (const n of model.graph.nodes) {
    if (n.opType !== 'MultiHeadAttention' || n.domain !== 'com.microsoft' || (n.inputs[1] && n.inputs[2])) continue;
    const layer = layers.find((l) => l.match.nodes.includes(n));
    const form = n.inputs[1] ? 'packed KV' : 'packed QKV';
    out.push(`${layer ? layer.name : `node "${n.name}" (not an analysed self-attention layer)`}: MultiHeadAttention with ${form}`);
  }
  return out;
}
