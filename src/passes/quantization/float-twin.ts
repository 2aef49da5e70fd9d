/**
 * The float twin of a statically quantized model: the same computation with its
 * activations left in float, so that running it shows the ranges the quantized
 * model's activation scales must hold (recalibration after a conversion, in
 * runtime/recalibrate.ts). Weights stay quantized (behind their DequantizeLinear):
 * the twin computes what the quantized model would without activation rounding and
 * clipping.
 *
 *   1. QOperator ops become their float op between DequantizeLinear of the operands
 *      and QuantizeLinear of the result (reading.ts says which op each one is):
 *        QLinearMatMul(a, sa, za, b, sb, zb, sy, zy) → Q(MatMul(DQ(a), DQ(b)), sy, zy)
 *      a QLinearConv / QGemm int32 bias dequantized with scale sa·sb.
 *   2. Each activation QuantizeLinear is a *site*: the float tensor it reads, under the
 *      name of its scale initializer (one scale names one tensor and the layout ops
 *      that pass it on). Every DequantizeLinear of an activation then reads that float
 *      tensor instead (layout ops on the quantized tensor — Reshape, Transpose … —
 *      are repeated on the float one), which leaves the QuantizeLinear nodes dead.
 *
 * The model is rewritten in place: pass a copy.
 */
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { runInference } from '../../ir/shape-inference/infer.js';
import type { Value } from '../../ir/value.js';
import { type FloatOp, floatOf, isQuantizeStep, quantFormOf } from './reading.js';

/** Layout ops that quantized tensors pass through unchanged (their output keeps the input's scale). */
const LAYOUT = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Gather', 'Flatten', 'Slice', 'Identity', 'Expand', 'Resize', 'MaxPool', 'DepthToSpace', 'SpaceToDepth', 'Tile']);

/** Attributes of QOperator ops that their float op does not have. */
const QOPERATOR_ONLY = new Set(['opset', 'channels_last']);

/** A static activation quantization: the float tensors a scale initializer quantizes. */
export type ActivationSites = Map<string, Value[]>;

/** True for a value the model fixes: an initializer or a Constant, or computed from them alone. */
function isConstant(v: Value | null | undefined, depth = 0): boolean {
  if (!v) return true;
  if (v.initializer) return true;
  const p = v.producer;
  if (!p || depth > 4) return false;
  return p.opType === 'Constant' || p.inputs.every((x) => isConstant(x, depth + 1));
}

/** Rewrites `model` into its float twin; returns the activation sites by scale initializer name. */
export function floatTwin(model: Model): ActivationSites {
  const g = model.graph;
  for (const n of [...g.nodes]) if (quantFormOf(n) === 'QOperator') toQdq(g, n, floatOf(n));
  const sites: ActivationSites = new Map();
  for (const n of g.nodes) {
    if (n.opType !== 'QuantizeLinear' || !isQuantizeStep(n) || isConstant(n.inputs[0]) || n.inputs[0]!.isGraphInput || !n.inputs[1]?.initializer) continue;
    const list = sites.get(n.inputs[1].name) ?? [];
    list.push(n.inputs[0]!);
    sites.set(n.inputs[1].name, list);
  }
  const env = runInference(model);
  const dtype = (v: Value) => {
    const t = env.types.get(v) ?? v.type;
    return t?.kind === 'tensor' ? t.dtype : DataType.UNDEFINED;
  };
  const lifted = new Map<Value, Value | null>();
  const floatValue = (u: Value, depth = 0): Value | null => {
    if (lifted.has(u)) return lifted.get(u)!;
    let f: Value | null = null;
    const p = u.producer;
    if (p && isQuantizeStep(p) && p.opType === 'QuantizeLinear' && !isConstant(p.inputs[0])) f = p.inputs[0]!;
    else if (p && LAYOUT.has(p.opType) && p.domain === '' && p.inputs[0] && depth < 64) {
      const x = floatValue(p.inputs[0], depth + 1);
      if (x) {
        f = g.addNode(p.opType, [x, ...p.inputs.slice(1)], { name: `${p.name || p.opType}/float`, attributes: Object.fromEntries(p.attributes), outputs: [`${u.name}_float`] }).outputs[0]!;
      }
    }
    lifted.set(u, f);
    return f;
  };
  for (const d of [...g.nodes]) {
    if (d.opType !== 'DequantizeLinear' || !isQuantizeStep(d) || !d.inputs[0] || isConstant(d.inputs[0])) continue;
    const f = floatValue(d.inputs[0]);
    if (!f) continue;
    const out = d.outputs[0]!;
    const want = dtype(out);
    const value = want !== DataType.UNDEFINED && dtype(f) !== want ? g.op('Cast', [f], { name: `${d.name || 'DequantizeLinear'}/float`, attributes: { to: { type: 'int', value: want } } }) : f;
    for (const use of [...out.uses]) use.node.setInput(use.index, value);
    if (out.isGraphOutput) g.replaceOutput(out, value);
  }
  g.topologicalSort();
  g.removeDeadNodes();
  return sites;
}

/** The weight axis of per-channel parameters of a QOperator op's operand `i` (null: per tensor). */
function channelAxis(op: FloatOp, i: number, scale: Value): number | undefined {
  const dims = scale.initializer?.dims;
  if (!dims || dims.length !== 1 || dims[0] === 1) return undefined;
  if (op.opType === 'Conv') return 0;
  if (op.opType === 'Gemm') return i === 1 ? (op.node.getInt('transB', 0) ? 0 : 1) : undefined;
  if (op.opType === 'MatMul' && i === 1) {
    const rank = op.inputs[1]?.initializer?.dims.length ?? 2;
    return rank - 1;
  }
  return undefined;
}

/** One QOperator node as DQ → float op → Q. */
function toQdq(g: Graph, n: Node, op: FloatOp): void {
  if (!op.inputQuant) return;
  const name = n.name || n.opType;
  const dq = (x: Value, scale: Value, zeroPoint: Value | null, axis: number | undefined, suffix: string) =>
    g.op('DequantizeLinear', zeroPoint ? [x, scale, zeroPoint] : [x, scale], {
      name: `${name}/${suffix}`,
      ...(axis !== undefined ? { attributes: { axis: { type: 'int', value: axis } } } : {}),
    });
  const inputs: (Value | null)[] = op.inputs.map((x, i) => {
    const p = op.inputQuant![i];
    if (!x) return null;
    if (p) return dq(x, p.scale, p.zeroPoint, channelAxis(op, i, p.scale), `dequantize_${i}`);
    // the int32 bias of QLinearConv / QGemm: scale = operand scales' product
    const [sa, sb] = [op.inputQuant![0]?.scale, op.inputQuant![1]?.scale];
    if (i === 2 && sa && sb && (op.opType === 'Conv' || op.opType === 'Gemm')) {
      const scale = g.op('Mul', [sa, sb], { name: `${name}/bias_scale` });
      const axis = sb.initializer && sb.initializer.elementCount > 1 ? 0 : undefined;
      return dq(x, scale, null, axis, 'dequantize_bias');
    }
    return x;
  });
  const attributes = Object.fromEntries([...n.attributes].filter(([k]) => !QOPERATOR_ONLY.has(k)));
  let out = g.op(op.opType, inputs, { name: `${name}/float`, attributes });
  if (op.outputQuant) {
    const q = op.outputQuant;
    out = g.op('QuantizeLinear', q.zeroPoint ? [out, q.scale, q.zeroPoint] : [out, q.scale], { name: `${name}/quantize` });
  }
  const y = n.outputs[0]!;
  for (const use of [...y.uses]) use.node.setInput(use.index, out);
  if (y.isGraphOutput) g.replaceOutput(y, out);
  g.removeNode(n);
}
