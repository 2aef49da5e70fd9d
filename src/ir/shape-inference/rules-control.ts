/**
 * Shape rules for the control-flow operators (If, Loop, Scan). Their bodies are inferred
 * before the node's rule runs, so a rule reads the body outputs' types. A loop-carried value
 * is known only when its initial type and the body's output type agree (it is either one,
 * depending on the number of iterations, which is a run-time value).
 */
import type { Graph } from '../graph.js';
import type { Node } from '../node.js';
import type { Dim, ValueType } from '../types.js';
import type { Value } from '../value.js';
import type { RuleContext, ShapeRule } from './infer.js';
import { normAxis, scalarInput, tensor } from './rule-helpers.js';
import { sameDim } from './symbolic.js';

function body(ctx: RuleContext, name: string): Graph | undefined {
  const a = ctx.node.attr(name);
  return a?.type === 'graph' ? a.value : undefined;
}

/** The dims both types agree on (unknown elsewhere); null when element type or rank differ. */
function agree(a: ValueType | null, b: ValueType | null): ValueType | null {
  if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor' || a.dtype !== b.dtype) return null;
  if (!a.shape || !b.shape || a.shape.length !== b.shape.length) return tensor(a.dtype, null);
  return tensor(a.dtype, a.shape.map((d, k) => (sameDim(d, b.shape![k]!) ? d : null)));
}

/** If: the output is one branch's; dims both branches agree on. */
const ifRule: ShapeRule = (ctx) => {
  const g = body(ctx, 'then_branch');
  const e = body(ctx, 'else_branch');
  if (!g || !e) return null;
  return ctx.node.outputs.map((_, i) => {
    const a = g.outputs[i] ? ctx.valueType(g.outputs[i]!) : null;
    const b = e.outputs[i] ? ctx.valueType(e.outputs[i]!) : null;
    if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor') return a ?? b;
    return agree(a, b) ?? tensor(a.dtype, null);
  });
};

/** `t` with `d` inserted at `axis` (of the result's rank). */
function withDim(t: ValueType | null, d: Dim, axis: number): ValueType | null {
  if (!t || t.kind !== 'tensor') return null;
  if (!t.shape) return tensor(t.dtype, null);
  const at = normAxis(axis, t.shape.length + 1);
  return tensor(t.dtype, [...t.shape.slice(0, at), d, ...t.shape.slice(at)]);
}

/**
 * Loop: inputs M, cond, v_initial…; body (iter, cond, v…) → (cond, v…, scan…). The final
 * loop-carried values, then the scan outputs [iterations, …]: the iteration count is known
 * only for a constant M and no cond input (a for loop, where the body's cond is ignored).
 */
const loopRule: ShapeRule = (ctx) => {
  const g = body(ctx, 'body');
  if (!g) return null;
  const carried = ctx.node.inputs.length - 2;
  const trips = ctx.hasInput(1) ? null : (scalarInput(ctx, 0) ?? null);
  return ctx.node.outputs.map((_, i) => {
    const out = g.outputs[i + 1];
    const bodyType = out ? ctx.valueType(out) : null;
    if (i < carried) return agree(ctx.type(i + 2), bodyType);
    return withDim(bodyType, trips, 0);
  });
};

/**
 * Scan (opset 9+): inputs state…, scan inputs… (num_scan_inputs); body (state…, slices…) →
 * (state…, scan slices…). Final states, then scan outputs with the sequence length inserted at
 * scan_output_axes (default 0). Opset 8: a batch dim leads every input and output, the sequence
 * is dim 1; with sequence_lens given, the outputs are not inferred.
 */
const scanRule: ShapeRule = (ctx) => {
  const g = body(ctx, 'body');
  const m = ctx.node.getInt('num_scan_inputs');
  if (!g || m === undefined) return null;
  const v8 = (ctx.opset ?? 9) < 9;
  if (v8 && ctx.hasInput(0)) return null;
  const first = v8 ? 1 : 0;
  const n = ctx.node.inputs.length - first - m;
  const scanIn = ctx.shape(first + n);
  let seq: Dim = null;
  let batch: Dim = null;
  if (scanIn && v8) {
    batch = scanIn[0] ?? null;
    seq = scanIn[1] ?? null;
  } else if (scanIn) {
    const axis = normAxis(ctx.node.getInts('scan_input_axes')?.[0] ?? 0, scanIn.length);
    seq = scanIn[axis] ?? null;
  }
  const outAxes = ctx.node.getInts('scan_output_axes');
  // body inputs typed from the node's (no declared type): a state whose type changes makes them wrong
  const consistent = v8 || g.inputs.slice(0, n).every((v, i) => v.type || (g.outputs[i] && sameType(ctx.valueType(v), ctx.valueType(g.outputs[i]!))));
  return ctx.node.outputs.map((_, i) => {
    const out = g.outputs[i];
    const bodyType = out ? ctx.valueType(out) : null;
    if (i < n) {
      const initial = ctx.type(first + i);
      if (!v8) return agree(initial, bodyType);
      // opset 8: the initial state has the batch dim in front
      const inner = initial?.kind === 'tensor' && initial.shape ? tensor(initial.dtype, initial.shape.slice(1)) : null;
      return withDim(agree(inner, bodyType), batch, 0);
    }
    if (v8) return withDim(withDim(bodyType, seq, 0), batch, 0);
    return consistent ? withDim(bodyType, seq, outAxes?.[i - n] ?? 0) : null;
  });
};

/**
 * Types for a Scan body's inputs that declare none (opset 9+), as onnx's own inference gives
 * them: a state has its initial value's type, a scan slice its input's type without the scan
 * axis. The Scan rule trusts the body's scan outputs only if each state comes out as it went in.
 */
export function scanBodyInputTypes(ctx: RuleContext): Map<Value, ValueType> {
  const seeded = new Map<Value, ValueType>();
  const g = body(ctx, 'body');
  const m = ctx.node.getInt('num_scan_inputs');
  if (ctx.node.opType !== 'Scan' || ctx.node.domain || !g || m === undefined || (ctx.opset ?? 9) < 9) return seeded;
  const n = ctx.node.inputs.length - m;
  const axes = ctx.node.getInts('scan_input_axes');
  g.inputs.forEach((v, i) => {
    const outer = ctx.type(i);
    if (v.type || !outer || outer.kind !== 'tensor') return;
    if (i < n) seeded.set(v, outer);
    else if (outer.shape && outer.shape.length > 0) {
      const axis = normAxis(axes?.[i - n] ?? 0, outer.shape.length);
      seeded.set(v, tensor(outer.dtype, outer.shape.filter((_, k) => k !== axis)));
    }
  });
  return seeded;
}

/**
 * Whether every seeded state of a Scan body comes out with the type it went in with (types of
 * a trial inference of the body); if not, the seeded types hold for the first iteration only.
 */
export function scanStatesKeepTypes(node: Node, seeded: Map<Value, ValueType>, typeOf: (v: Value) => ValueType | null): boolean {
  const g = node.attr('body');
  if (g?.type !== 'graph') return false;
  const n = node.inputs.length - (node.getInt('num_scan_inputs') ?? 0);
  return g.value.inputs.slice(0, n).every((v, i) => !seeded.has(v) || (!!g.value.outputs[i] && sameType(typeOf(v), typeOf(g.value.outputs[i]!))));
}

/** Same element type, rank and dims (all provably equal). */
function sameType(a: ValueType | null, b: ValueType | null): boolean {
  if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor' || a.dtype !== b.dtype || !a.shape || !b.shape) return false;
  return a.shape.length === b.shape.length && a.shape.every((d, k) => sameDim(d, b.shape![k]!));
}

export const CONTROL_RULES: Record<string, ShapeRule> = {
  If: ifRule,
  Loop: loopRule,
  Scan: scanRule,
};
