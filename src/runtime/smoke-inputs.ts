/**
 * Concrete shapes for the smoke check's inputs, read from the graph's declared input
 * types. Symbolic dims are bound in rounds:
 *
 *   derive    run shape inference with the symbols bound so far; an input that feeds
 *             an elementwise op (Add, Sub, Mul, Div; through Cast/Identity) takes the
 *             numeric dims of the other operand, one that feeds a Concat those of the
 *             other operands off the concat axis (a dim of 1 says nothing: it broadcasts).
 *             A UNet's ControlNet residual inputs ([B, 320, h1, w1] added to the down
 *             block's output) get their level's size this way, once the latent is bound.
 *   fallback  when nothing more can be derived, the first input still open (rank-4
 *             inputs first, those read by a Conv before the others: the latent) binds
 *             its symbols to small legal values:
 *               rank-4 [B, C, H, W]   B = 1; H = W = the size tried (32, 64, 16)
 *               rank-3 [B, L, D]      L = 8 text tokens; a symbolic D is read from the
 *                                     weight of the MatMul/Gemm that consumes the input
 *               anything else         batch dims 1
 *
 * Named symbols are shared across inputs, and dim expressions (`height*4` of a
 * ControlNet's conditioning image) are evaluated once their symbols are bound. Static
 * dims stay as declared.
 */
import { DataType, dtypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import { runInference } from '../ir/shape-inference/infer.js';
import { bindDim } from '../ir/shape-inference/symbolic.js';
import type { Dim } from '../ir/types.js';
import type { Value } from '../ir/value.js';

export interface PlannedInput {
  name: string;
  dtype: DataType;
  dims: number[];
  /** Whether a symbolic spatial dim was bound to the size tried (so another size may be tried). */
  spatial: boolean;
  /** A rank-4 input other than the first whose spatial dims could not be derived from the graph (they got the size tried). */
  guessed: boolean;
  timestep: boolean;
}

const TIMESTEP = /time|step|sigma/i;
const FEEDABLE = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.INT64, DataType.INT32, DataType.BOOL]);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);
const PASS_THROUGH = new Set(['Cast', 'Identity']);

/** Concrete shapes for the model's inputs, or why there are none. */
export function planInputs(model: Model, size: number, sequence: number): PlannedInput[] | string {
  const inputs = model.graph.inputs.filter((v) => !v.isInitializer);
  for (const v of inputs) {
    if (v.type?.kind !== 'tensor' || v.type.shape === null) return `input "${v.name}" has no declared shape`;
    if (!FEEDABLE.has(v.type.dtype)) return `input "${v.name}" has element type ${dtypeName(v.type.dtype)}, which the check does not feed`;
  }
  const state: BindState = { bindings: {}, unnamed: new Map(), inferredAt: undefined };
  const spatial = new Set<Value>();
  const guessed = new Set<Value>();
  // Rank-4 (image-like) inputs first, those a Conv reads before the rest: their symbols name the spatial dims.
  const order = [...inputs].sort((a, b) => rankOf(b) - rankOf(a) || Number(feedsConv(b)) - Number(feedsConv(a)));
  for (;;) {
    const open = order.filter((v) => dimsOf(v, state).some((d) => d === undefined));
    if (!open.length) break;
    if (derive(model, open, state)) continue;
    const v = open[0]!;
    if (bindFallback(v, state, size, sequence)) {
      if (spatial.size) guessed.add(v);
      spatial.add(v);
    }
  }
  return inputs.map((v) => ({
    name: v.name,
    dtype: (v.type as { dtype: DataType }).dtype,
    dims: dimsOf(v, state) as number[],
    spatial: spatial.has(v),
    guessed: guessed.has(v),
    timestep: shapeOf(v).length <= 1 && TIMESTEP.test(v.name),
  }));
}

interface BindState {
  /** Symbol (or dim expression taken as a whole) → value. */
  bindings: Record<string, number>;
  /** Values of unnamed (null) dims, per input and axis. */
  unnamed: Map<Value, Map<number, number>>;
  /** The bindings the last shape inference ran with (JSON), so that it does not run twice on the same. */
  inferredAt: string | undefined;
}

function shapeOf(v: Value): Dim[] {
  return v.type?.kind === 'tensor' ? (v.type.shape ?? []) : [];
}

/** The input's dims as far as they are bound (undefined where not yet). */
function dimsOf(v: Value, state: BindState): (number | undefined)[] {
  return shapeOf(v).map((d, axis) => {
    if (typeof d === 'number') return d;
    if (d === null) return state.unnamed.get(v)?.get(axis);
    const bound = bindDim(d, state.bindings);
    return typeof bound === 'number' ? bound : undefined;
  });
}

function bindAxis(v: Value, axis: number, value: number, state: BindState): void {
  const d = shapeOf(v)[axis];
  if (typeof d === 'string') state.bindings[d] = value;
  else if (d === null) {
    const m = state.unnamed.get(v) ?? new Map<number, number>();
    m.set(axis, value);
    state.unnamed.set(v, m);
  }
}

/** Binds the open dims of `v` to the defaults; whether a spatial dim was among them. */
function bindFallback(v: Value, state: BindState, size: number, sequence: number): boolean {
  const shape = shapeOf(v);
  let spatial = false;
  dimsOf(v, state).forEach((known, axis) => {
    if (known !== undefined) return;
    let value = 1;
    if (shape.length === 4 && axis >= 2) {
      value = size;
      spatial = true;
    } else if (shape.length === 3 && axis === 1) value = sequence;
    else if (axis > 0 && axis === shape.length - 1) value = consumerWidth(v) ?? 1;
    bindAxis(v, axis, value, state);
  });
  return spatial;
}

/**
 * Binds open dims of `open` inputs from the shapes their consumers require, by shape
 * inference with the bindings so far; whether anything was bound.
 */
function derive(model: Model, open: Value[], state: BindState): boolean {
  const candidates = open.filter((v) => constrainingUses(v).length > 0);
  const key = JSON.stringify(state.bindings);
  if (!candidates.length || key === state.inferredAt) return false;
  state.inferredAt = key;
  const env = runInference(model, { bindings: state.bindings });
  const shape = (x: Value): Dim[] | null => {
    const t = env.types.get(x);
    return t?.kind === 'tensor' ? t.shape : null;
  };
  let changed = false;
  for (const v of candidates) {
    const rank = shapeOf(v).length;
    for (const { node, index } of constrainingUses(v)) {
      // The other operands' dims, right-aligned to v's (elementwise ops broadcast numpy-style).
      const others: (Dim | undefined)[][] = [];
      if (node.opType === 'Concat') {
        const axis = node.getInt('axis', 0);
        const at = axis < 0 ? axis + rank : axis;
        node.inputs.forEach((x, i) => {
          const s = x && i !== index ? shape(x) : null;
          if (s?.length === rank) others.push(s.map((d, k) => (k === at ? undefined : d)));
        });
      } else {
        const other = node.inputs[1 - index];
        const s = other ? shape(other) : null;
        if (s && s.length <= rank) others.push([...Array<undefined>(rank - s.length).fill(undefined), ...s]);
      }
      for (const s of others) {
        const known = dimsOf(v, state);
        s.forEach((d, axis) => {
          if (known[axis] !== undefined || typeof d !== 'number' || d <= 1) return;
          bindAxis(v, axis, d, state);
          changed = true;
        });
      }
    }
  }
  return changed;
}

/** The nodes reading `v` (directly or through Cast/Identity) whose other operands fix its shape: elementwise binary ops and Concat. */
function constrainingUses(v: Value): { node: Node; index: number }[] {
  const found: { node: Node; index: number }[] = [];
  for (const { node, index } of v.uses) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    if (PASS_THROUGH.has(node.opType)) found.push(...constrainingUses(node.outputs[0]!));
    else if ((ELEMENTWISE.has(node.opType) && node.inputs.length === 2) || node.opType === 'Concat') found.push({ node, index });
  }
  return found;
}

function feedsConv(v: Value): boolean {
  return v.uses.some(({ node }) => node.opType === 'Conv' || (PASS_THROUGH.has(node.opType) && feedsConv(node.outputs[0]!)));
}

function rankOf(v: Value): number {
  return shapeOf(v).length;
}

/** The input width a MatMul/Gemm reading `v` (directly or through a Cast) expects. */
function consumerWidth(v: Value): number | undefined {
  for (const use of v.uses) {
    const n = use.node;
    if (n.opType === 'Cast' && n.domain === '') {
      const w = consumerWidth(n.outputs[0]!);
      if (w !== undefined) return w;
    }
    const weight = n.inputs[1]?.initializer;
    if (use.index !== 0 || !weight || weight.dims.length !== 2) continue;
    if (n.opType === 'MatMul' && n.domain === '') return weight.dims[0];
    if (n.opType === 'Gemm' && n.domain === '') {
      const transB = n.attributes.get('transB');
      return transB?.type === 'int' && transB.value === 1 ? weight.dims[1] : weight.dims[0];
    }
  }
  return undefined;
}
