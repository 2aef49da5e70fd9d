/**
 * What an attention pattern finds, and the walkers all patterns share.
 *
 * A pattern (one file per export variant) recognises the *core* of an attention
 * layer — the part that combines q, k and v — and reports the three tensors that
 * enter it and the tensor that leaves it. The shared code here then walks from q,
 * k and v back to their projections (`to_q`, `to_k`, `to_v`: MatMul/Gemm with a
 * weight) and from the core's output forward through `to_out` (+bias, +rescale),
 * and decides self- vs cross-attention structurally: in self-attention all three
 * projections read the same tensor.
 *
 * Every walk reads ops through quantization (quantization/reading.ts): a projection written as
 * `DequantizeLinear(QuantizeLinear(x))` around a MatMul with a `DequantizeLinear`
 * weight, as a QLinearMatMul, or as DynamicQuantizeLinear + MatMulInteger is the
 * MatMul it stands for, so one pattern per attention form covers its quantized
 * exports too.
 */
import { DataType } from '../../ir/dtype.js';
import type { InferResult } from '../../ir/shape-inference/infer.js';
import type { Node } from '../../ir/node.js';
import type { Dim, ValueType } from '../../ir/types.js';
import type { Value } from '../../ir/value.js';
import { type LoraTerm, isAdapterNode, loraSum } from './lora-projection.js';
import { type FloatOp, type QuantParams, type RegionQuantization, producerOp, readerOps } from '../quantization/reading.js';

/** What a pattern reports about one attention core. */
export interface AttentionCore {
  /** Tensors entering the core (after projection, possibly reshaped/scaled). null when the op projects internally. */
  q: Value | null;
  k: Value | null;
  v: Value | null;
  /** The core's result (heads merged or not). */
  output: Value;
  /** The core's nodes (for reports). */
  nodes: Node[];
  /** Head count when the op states it. */
  heads?: number;
  /** Set when the core op projects X itself (com.microsoft Attention): the projected input. */
  fusedInput?: Value;
  /** How the scores are scaled before the Softmax (information only: rewrites replace the whole module). */
  scale?: ScoreScale;
}

/** A scalar factor the scores are multiplied or divided by. */
export interface ScaleFactor {
  op: 'Mul' | 'Div';
  /** A one-element value: a constant, or a scalar computed at run time. */
  value: Value;
}

/**
 * What a pattern stepped over between the q·kᵀ product and the Softmax. Factors on
 * q or k before the product are not listed: they belong to the projections
 * (`traceProjection` passes them, projection-weights.ts folds them).
 */
export interface ScoreScale {
  /** Scalar Mul/Div on the scores, in the order they apply (decomposed cores; empty for fused ops). */
  factors: ScaleFactor[];
  /** An additive mask (or bias) reaches the scores. */
  masked: boolean;
  /** Fused ops: the op's `scale` attribute, or null for its default 1/√head_dim. Absent for decomposed cores. */
  attribute?: number | null;
}

/** The scale of a fused attention op (ONNX Attention, com.microsoft): its `scale` attribute; 0 or absent means 1/√head_dim. */
export function fusedScale(node: Node, masked: boolean): ScoreScale {
  const s = node.getFloat('scale');
  return { factors: [], masked, attribute: s !== undefined && s !== 0 ? s : null };
}

export interface AttentionPattern {
  name: string;
  description: string;
  /** Quick filter: could this node be the anchor of the pattern? */
  anchor(node: Node): boolean;
  match(anchor: Node, ctx: MatchContext): AttentionCore | null;
}

export interface Projection {
  /** The tensor being projected (X for self-attention); a quantized tensor when the projection reads one (QLinearMatMul). */
  source: Value;
  node: Node;
  /** The projection's nodes: `node`, and what it reads through (a dynamic MatMulInteger group, the Quantize/DequantizeLinear). */
  nodes: Node[];
  /** How the projection dequantizes `source` when that is a quantized tensor. */
  sourceQuant?: QuantParams;
  weight: Value | null;
  /** LoRA adapters summed into the projection (lora-projection.ts); they read `source` too. */
  adapters?: LoraTerm[];
}

export interface AttentionMatch {
  pattern: string;
  kind: 'self' | 'cross';
  /** X: what `attn1` reads (its query source). */
  input: Value;
  /** Where K and V come from (X for self-attention, encoder states for cross-attention). */
  kvSource: Value;
  /** The module's output (after to_out, bias and any rescale). */
  output: Value;
  /** C, the token channel count, when known. */
  channels: number | null;
  heads: number | null;
  /** Diffusers path of the enclosing transformer block (e.g. `down_blocks.0.attentions.0.transformer_blocks.0`). */
  blockPath: string | null;
  /** Diffusers path of the attention module itself (`….attn1`). */
  modulePath: string | null;
  /** All nodes of the module that the rewrite makes dead (projections, core, output projection). */
  nodes: Node[];
  /** Projection weights (reported as removed once dead). */
  weights: Value[];
  /**
   * to_out's bias when an optimizer fused it into the node that reads the module
   * (com.microsoft SkipLayerNormalization input 4): it belongs to the module, so a
   * rewrite that replaces the module must detach it.
   */
  absorbedBias?: { node: Node; index: number };
  /** Set when the module is read through quantization (quantization/reading.ts): how its input and output are quantized. */
  quantization?: RegionQuantization;
}

export class MatchContext {
  constructor(readonly env: InferResult) {}

  type(v: Value | null | undefined): ValueType | null {
    return v ? (this.env.types.get(v) ?? v.type ?? null) : null;
  }

  shape(v: Value | null | undefined): Dim[] | null {
    const t = this.type(v);
    return t?.kind === 'tensor' ? t.shape : null;
  }

  dtype(v: Value | null | undefined): DataType {
    const t = this.type(v);
    return t?.kind === 'tensor' ? t.dtype : DataType.UNDEFINED;
  }

  contents(v: Value | null | undefined): Dim[] | undefined {
    return v ? this.env.contents.get(v) : undefined;
  }

  /** A value that holds one element (rank 0, or every dim 1). */
  isScalar(v: Value | null | undefined): boolean {
    if (!v) return false;
    const s = this.shape(v);
    if (s) return s.every((d) => d === 1);
    return v.initializer ? v.initializer.elementCount === 1 : false;
  }
}

/** Ops a projection's result passes through on its way to the core (layout, casts, scaling). */
const TRANSPARENT = new Set(['Reshape', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Contiguous']);

/** A weight: an initializer, maybe behind Cast/Transpose/Identity/DequantizeLinear. */
export function weightOf(v: Value | null, depth = 0): Value | null {
  if (!v || depth > 4) return null;
  if (v.initializer) return v;
  const p = v.producer;
  if (!p) return null;
  if (p.opType === 'Constant') return v;
  if (['Cast', 'Transpose', 'Identity', 'DequantizeLinear', 'QuantizeLinear', 'Reshape'].includes(p.opType)) return weightOf(p.inputs[0] ?? null, depth + 1);
  return null;
}

/**
 * Walks from a tensor entering the core back to the MatMul/Gemm that projected it.
 * Passes through layout ops, casts, scalar scaling, bias adds, unfused LoRA
 * adapters of the same input and the slicing of a packed QKV projection — each
 * read through quantization (`producerOp`).
 */
export function traceProjection(v: Value | null, ctx: MatchContext): Projection | null {
  let cur = v;
  const adapters: LoraTerm[] = [];
  for (let depth = 0; cur && depth < 24; depth++) {
    const p: FloatOp | null = producerOp(cur);
    if (!p) return null;
    if ((p.opType === 'MatMul' || p.opType === 'Gemm') && p.domain === '') {
      const w = weightOf(p.inputs[1] ?? null);
      const source = p.inputs[0];
      if (!w || !source || adapters.some((a) => a.input !== source)) return null;
      const sourceQuant = p.inputQuant?.[0];
      return {
        source,
        node: p.node,
        weight: w,
        nodes: p.nodes,
        ...(sourceQuant ? { sourceQuant } : {}),
        ...(adapters.length ? { adapters } : {}),
      };
    }
    if (TRANSPARENT.has(p.opType) || ['Split', 'Slice', 'Gather'].includes(p.opType)) {
      cur = p.inputs[0] ?? null;
      continue;
    }
    if (p.opType === 'Mul' || p.opType === 'Div') {
      const [a, b] = p.inputs;
      if (ctx.isScalar(b)) cur = a ?? null;
      else if (p.opType === 'Mul' && ctx.isScalar(a)) cur = b ?? null;
      else return null;
      continue;
    }
    if (p.opType === 'Add') {
      const [a, b] = p.inputs;
      if (weightOf(b ?? null)) cur = a ?? null;
      else if (weightOf(a ?? null)) cur = b ?? null;
      else {
        const lora = loraSum(p.node, ctx);
        if (!lora) return null;
        adapters.push(lora);
        cur = lora.base;
      }
      continue;
    }
    return null;
  }
  return null;
}

/** Readers of `v` that do real work (shape queries excluded). */
export function dataUsers(v: Value): Node[] {
  return v.users().filter((n) => n.opType !== 'Shape' && n.opType !== 'Size');
}

export interface OutputProjection {
  node: Node;
  weight: Value;
  /** The module's final value (after bias / rescale). */
  output: Value;
  /** How `output` is dequantized when it is a quantized tensor (a QOperator to_out read directly). */
  outputQuant?: QuantParams;
  nodes: Node[];
  /** to_out's bias, fused by an optimizer into the next node (see AttentionMatch.absorbedBias). */
  absorbedBias?: { node: Node; index: number };
}

/** Normalisations onnxruntime fuses with the residual add and a preceding bias (input 4). */
const SKIP_NORMS = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);

/**
 * True when `v` is the result of an attention core (possibly merged, cast and
 * scaled): a MatMul whose left operand is softmax probabilities, or a fused
 * attention op. Used to recognise several cores summed before one `to_out`
 * (IP-Adapter adds a second core on the image tokens to attn2's).
 */
export function isAttentionBranch(v: Value | null, ctx: MatchContext): boolean {
  let cur = v;
  for (let depth = 0; cur && depth < 10; depth++) {
    const p = producerOp(cur);
    if (!p) return false;
    if (/^(Attention|MultiHeadAttention|GroupQueryAttention)$/.test(p.opType)) return true;
    if (p.opType === 'MatMul') {
      let probs = producerOp(p.inputs[0]);
      while (probs && ['Cast', 'Dropout', 'Identity'].includes(probs.opType)) probs = producerOp(probs.inputs[0]);
      return probs?.opType === 'Softmax';
    }
    if (TRANSPARENT.has(p.opType)) cur = p.inputs[0] ?? null;
    else if ((p.opType === 'Mul' || p.opType === 'Div') && ctx.isScalar(p.inputs[1]) && weightOf(p.inputs[1] ?? null)) cur = p.inputs[0] ?? null;
    else if (p.opType === 'Mul' && ctx.isScalar(p.inputs[0]) && weightOf(p.inputs[0] ?? null)) cur = p.inputs[1] ?? null;
    else return false;
  }
  return false;
}

/**
 * Walks forward from the core's output through head merging (and a scalar scale
 * or the sum with another attention core) to `to_out` (+bias, +rescale), reading
 * ops through quantization (`readerOps`). It stops on the last op of the module,
 * so that a quantized model's module ends on a float value where it can (the
 * QuantizeLinear after it stays with its readers).
 */
export function traceOutputProjection(core: Value, ctx: MatchContext): OutputProjection | null {
  const nodes: Node[] = [];
  let cur = core;
  for (let depth = 0; depth < 12; depth++) {
    const users = readerOps(cur);
    // to_out with unfused LoRA adapters: its input also feeds their down-projections
    const u = users.length === 1 ? users[0]! : users.find((n) => (n.opType === 'MatMul' || n.opType === 'Gemm') && n.inputs[0] === cur && !isAdapterNode(n.node, ctx));
    if (!u) return null;
    if ((u.opType === 'MatMul' || u.opType === 'Gemm') && u.inputs[0] === cur) {
      const w = weightOf(u.inputs[1] ?? null);
      if (!w) return null;
      nodes.push(...u.nodes);
      let out = u.outputs[0]!;
      let outputQuant = u.outputQuant;
      // bias, LoRA adapters, then rescale_output_factor (Div/Mul by a constant scalar), Identity/Dropout.
      // A multiplication by a computed gate (PixArt's gate_msa) is outside the module.
      let sawBias = false;
      for (let k = 0; k < 6; k++) {
        const next = readerOps(out);
        if (next.length !== 1) break;
        const n = next[0]!;
        const other = n.inputs[0] === out ? n.inputs[1] : n.inputs[0];
        let take = false;
        const lora = n.opType === 'Add' && n.node.opType === 'Add' && !weightOf(other ?? null) ? loraSum(n.node, ctx) : null;
        if (n.opType === 'Add' && !sawBias && weightOf(other ?? null)) take = sawBias = true;
        else if (lora && lora.base === out && lora.input === cur) {
          nodes.push(...lora.nodes);
          take = true;
        } else if ((n.opType === 'Mul' || (n.opType === 'Div' && n.inputs[0] === out)) && ctx.isScalar(other) && weightOf(other ?? null)) take = true;
        else if (n.opType === 'Identity' || n.opType === 'Dropout') take = true;
        if (!take) break;
        nodes.push(...n.nodes);
        out = n.outputs[0]!;
        outputQuant = n.outputQuant;
      }
      // every other reader of the input must be an adapter summed in above
      if (users.some((n) => !nodes.includes(n.node))) return null;
      let absorbedBias: OutputProjection['absorbedBias'];
      const reader = dataUsers(out);
      if (!sawBias && out === u.outputs[0] && reader.length === 1 && SKIP_NORMS.has(reader[0]!.opType)) {
        const sln = reader[0]!;
        const slot = sln.inputs.indexOf(out);
        if ((slot === 0 || slot === 1) && weightOf(sln.inputs[4] ?? null)) absorbedBias = { node: sln, index: 4 };
      }
      return { node: u.node, weight: w, output: out, nodes, ...(outputQuant ? { outputQuant } : {}), ...(absorbedBias ? { absorbedBias } : {}) };
    }
    if (TRANSPARENT.has(u.opType) && u.inputs[0] === cur) {
      nodes.push(...u.nodes);
      cur = u.outputs[0]!;
      continue;
    }
    const other = u.inputs[0] === cur ? u.inputs[1] : u.inputs[0];
    const scalarScale = (u.opType === 'Mul' || (u.opType === 'Div' && u.inputs[0] === cur)) && ctx.isScalar(other) && weightOf(other ?? null);
    if (scalarScale || (u.opType === 'Add' && isAttentionBranch(other ?? null, ctx))) {
      nodes.push(...u.nodes);
      cur = u.outputs[0]!;
      continue;
    }
    return null;
  }
  return null;
}

// ---- module paths -----------------------------------------------------------

const ROOT_MODULES = /^(down_blocks|mid_block|up_blocks|transformer_blocks|single_transformer_blocks|blocks|layers|controlnet_down_blocks|controlnet_mid_block|input_blocks|middle_block|output_blocks)$/;
const ATTN_MODULE = /^attn\d*$|^attention$|^self_attn$/;

/** Path segments of a node from its name (`/m/down_blocks.0/…/attn1/to_q/MatMul`) or dynamo metadata. */
function scopeOf(node: Node): string[] | null {
  const scopes = node.meta('pkg.torch.onnx.name_scopes');
  if (scopes) {
    // A Python list repr of cumulative module paths, root ('') first; the last item
    // is the node's own name (`linear_3`, `scaled_dot_product_attention`), not a module.
    const items = [...scopes.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '');
    const modules = items.length > 1 ? items.slice(0, -1) : items;
    const innermost = modules[modules.length - 1];
    if (innermost) return splitModulePath(innermost);
  }
  if (node.name.includes('/')) {
    const parts = node.name.split('/').filter(Boolean);
    parts.pop(); // the op itself (MatMul, Add_3 …)
    return nestUnqualified(parts.flatMap(splitModulePath));
  }
  return null;
}

/**
 * TorchScript names a module inside an indexed container by its own index path:
 * LDM's `input_blocks.1` (a Sequential) holds `input_blocks.1.1`, a Sequential
 * `to_out` holds `to_out.0`. The inner segment extends the outer; keep the inner.
 */
function nestUnqualified(segments: string[]): string[] {
  const out: string[] = [];
  for (const s of segments) {
    const prev = out[out.length - 1];
    if (prev !== undefined && s.startsWith(`${prev}.`) && /^\d+(\.\d+)*$/.test(s.slice(prev.length + 1))) out[out.length - 1] = s;
    else out.push(s);
  }
  return out;
}

/** `down_blocks.0.attentions.1` → ['down_blocks', '0', 'attentions', '1'] grouped as module names: ['down_blocks.0', 'attentions.1']. */
function splitModulePath(path: string): string[] {
  const raw = path.split('.').filter(Boolean);
  const out: string[] = [];
  for (const p of raw) {
    if (/^\d+$/.test(p) && out.length) out[out.length - 1] += `.${p}`;
    else out.push(p);
  }
  return out;
}

/**
 * The attention module path and its enclosing block path, from the names of the
 * module's nodes (projections first). Wrapper prefixes before the first diffusers
 * root module (`/m/`, `unet.` …) are dropped.
 */
export function modulePaths(nodes: Node[]): { module: string | null; block: string | null } {
  for (const n of nodes) {
    const scope = scopeOf(n);
    if (!scope) continue;
    const a = scope.findIndex((s) => ATTN_MODULE.test(s));
    if (a < 0) continue;
    let start = scope.findIndex((s) => ROOT_MODULES.test(s.split('.')[0]!));
    if (start < 0 || start > a) start = 0;
    const block = scope.slice(start, a).join('.');
    return { module: scope.slice(start, a + 1).join('.'), block: block || null };
  }
  return { module: null, block: null };
}
