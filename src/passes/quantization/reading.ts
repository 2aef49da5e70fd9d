/**
 * Quantization as a way of reading a value. Quantized exports (onnxruntime's
 * quantizer, Olive, the NPU toolchains) write the float ops of an attention module
 * in three forms; the attention walkers (attention/match.ts) and the H/W source
 * (delta-conv/spatial/source.ts) read every op through `producerOp` and
 * `readerOps`, which see the float op each form stands for:
 *
 *   QDQ        x' = DequantizeLinear(QuantizeLinear(x, s, z), s, z)            around every op
 *              W' = DequantizeLinear(W_q, s, z [, axis])                       weights: per-tensor or per-channel,
 *                                                                             8 or 16 bit, zero point optional
 *   QOperator  QLinearMatMul(a, sa, za, b, sb, zb, sy, zy)   = MatMul(a', b')  quantized with (sy, zy)
 *              com.microsoft QLinearAdd / QLinearMul / QLinearSoftmax / QLinearSigmoid / QLinearConcat,
 *              QGemm, QLinearConv                            = Add, Mul, Softmax, Sigmoid, Concat, Gemm, Conv
 *   dynamic    x_q, s, z = DynamicQuantizeLinear(x)
 *              y = Cast(MatMulInteger(x_q, W_q, z, z_w)) · (s · s_w)         = MatMul(x, W')
 *              y = Cast(ConvInteger(x_q, W_q, z, z_w)) · (s · s_w) [+ b]     = Conv(x, W', b)
 *              com.microsoft DynamicQuantizeMatMul, MatMulIntegerToFloat    = MatMul (onnxruntime's fusions)
 *
 * A quantized value stands for its dequantized float: `q` read through
 * `DequantizeLinear(q, s, z)`. Stepping over QuantizeLinear / DequantizeLinear
 * therefore keeps the value a walker follows; the QOperator and dynamic ops are
 * read as the float op they compute, with their float inputs (a QLinearMatMul's
 * quantized operands; the float `x` a DynamicQuantizeLinear reads).
 *
 * Nothing here rewrites: the conversion replaces a region as a whole, dequantizing
 * its input and quantizing its output again where they are quantized tensors
 * (`QuantParams`, read from the ops at the region's edges).
 */
import { DataType } from '../../ir/dtype.js';
import type { Node } from '../../ir/node.js';
import type { Value } from '../../ir/value.js';

/** How a quantized tensor maps to the float it stands for: x = (q − zero_point) · scale. */
export interface QuantParams {
  scale: Value;
  /** Absent: zero (as DequantizeLinear without its third input). */
  zeroPoint: Value | null;
  /** QuantizeLinear / DequantizeLinear `axis` (per-channel params), when set. */
  axis?: number;
  /** Domain of the Quantize/DequantizeLinear that reads or writes it: com.microsoft for 16 bit before opset 21. */
  domain: string;
}

/** A node (or a dynamic-quantization group of nodes) read as the float op it computes. */
export interface FloatOp {
  /** The float op: MatMul for QLinearMatMul and MatMulInteger groups, Add for QLinearAdd …, else the node's own type. */
  opType: string;
  /** '' for every op read as an ONNX op; the node's own domain otherwise. */
  domain: string;
  /** The float meaning of each input; a quantized input stands for its dequantized value. */
  inputs: (Value | null)[];
  outputs: Value[];
  /** The node that carries the attributes (axis, transB, strides …). */
  node: Node;
  /** Every node the op is made of, and the Quantize/DequantizeLinear steps read through to reach it. */
  nodes: Node[];
  /** How quantized inputs are dequantized, per input (QOperator ops). */
  inputQuant?: (QuantParams | undefined)[];
  /** How the output is dequantized when it is a quantized tensor. */
  outputQuant?: QuantParams;
}

const QUANTIZE_STEP = new Set(['QuantizeLinear', 'DequantizeLinear']);
const QUANT_DOMAINS = new Set(['', 'ai.onnx', 'com.microsoft']);

/** QuantizeLinear or DequantizeLinear (ONNX, or com.microsoft's 16-bit form). */
export function isQuantizeStep(n: Node | null | undefined): boolean {
  return !!n && QUANTIZE_STEP.has(n.opType) && QUANT_DOMAINS.has(n.domain);
}

/** Element types of quantized tensors (integer data standing for floats). */
export function isQuantizedType(dt: DataType): boolean {
  return (
    dt === DataType.UINT8 ||
    dt === DataType.INT8 ||
    dt === DataType.UINT16 ||
    dt === DataType.INT16 ||
    dt === DataType.UINT4 ||
    dt === DataType.INT4 ||
    dt === DataType.FLOAT8E4M3FN ||
    dt === DataType.FLOAT8E4M3FNUZ ||
    dt === DataType.FLOAT8E5M2 ||
    dt === DataType.FLOAT8E5M2FNUZ
  );
}

const params = (n: Node, scale: number, zeroPoint: number): QuantParams | undefined => {
  const s = n.inputs[scale];
  if (!s) return undefined;
  const axis = n.getInt('axis');
  return { scale: s, zeroPoint: n.inputs[zeroPoint] ?? null, ...(axis !== undefined ? { axis } : {}), domain: n.domain === 'com.microsoft' ? 'com.microsoft' : '' };
};

/** The QOperator ops: float op, which inputs are operands, their (scale, zero point) slots, and the output's. */
interface QLinearForm {
  op: string;
  operands: number[];
  operandParams: [number, number][];
  output?: [number, number];
}

const QLINEAR: Record<string, QLinearForm> = {
  QLinearMatMul: { op: 'MatMul', operands: [0, 3], operandParams: [[1, 2], [4, 5]], output: [6, 7] },
  QLinearConv: { op: 'Conv', operands: [0, 3, 8], operandParams: [[1, 2], [4, 5]], output: [6, 7] },
  'com.microsoft.QLinearAdd': { op: 'Add', operands: [0, 3], operandParams: [[1, 2], [4, 5]], output: [6, 7] },
  'com.microsoft.QLinearMul': { op: 'Mul', operands: [0, 3], operandParams: [[1, 2], [4, 5]], output: [6, 7] },
  'com.microsoft.QLinearSoftmax': { op: 'Softmax', operands: [0], operandParams: [[1, 2]], output: [3, 4] },
  'com.microsoft.QLinearSigmoid': { op: 'Sigmoid', operands: [0], operandParams: [[1, 2]], output: [3, 4] },
  'com.microsoft.QLinearLeakyRelu': { op: 'LeakyRelu', operands: [0], operandParams: [[1, 2]], output: [3, 4] },
  'com.microsoft.QGemm': { op: 'Gemm', operands: [0, 3, 6], operandParams: [[1, 2], [4, 5]], output: [7, 8] },
  'com.microsoft.MatMulIntegerToFloat': { op: 'MatMul', operands: [0, 1], operandParams: [[2, 4], [3, 5]] },
  'com.microsoft.DynamicQuantizeMatMul': { op: 'MatMul', operands: [0, 1], operandParams: [[-1, -1], [2, 3]] },
};

const keyOf = (n: Node) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType);

/** A node read as itself. */
function plainOp(node: Node): FloatOp {
  return { opType: node.opType, domain: node.domain, inputs: node.inputs, outputs: node.outputs, node, nodes: [node] };
}

/** The float a dynamically quantized operand stands for: x for DynamicQuantizeLinear(x)'s first output. */
function dynamicOperand(q: Value | null | undefined): { value: Value | null; nodes: Node[] } {
  const p = q?.producer;
  if (p?.opType === 'DynamicQuantizeLinear' && q === p.outputs[0]) return { value: p.inputs[0] ?? null, nodes: [p] };
  return { value: q ?? null, nodes: [] };
}

/**
 * `Mul(Cast(MatMulInteger | ConvInteger (a, b, za, zb)), scale)` (either operand order): the dynamic
 * form's product, read as MatMul / Conv of the float operands.
 */
function integerProduct(mul: Node): FloatOp | null {
  if (mul.opType !== 'Mul' || mul.domain !== '' || mul.inputs.length !== 2) return null;
  for (const k of [0, 1]) {
    const cast = mul.inputs[k]?.producer;
    if (cast?.opType !== 'Cast' || cast.domain !== '') continue;
    const int = cast.inputs[0]?.producer;
    if (!int || int.domain !== '' || (int.opType !== 'MatMulInteger' && int.opType !== 'ConvInteger')) continue;
    const a = dynamicOperand(int.inputs[0]);
    const b = dynamicOperand(int.inputs[1]);
    const scale = mul.inputs[1 - k];
    const scaleNodes = scale?.producer?.opType === 'Mul' ? [scale.producer] : [];
    return {
      opType: int.opType === 'MatMulInteger' ? 'MatMul' : 'Conv',
      domain: '',
      inputs: [a.value, b.value],
      outputs: mul.outputs,
      node: int,
      nodes: [...a.nodes, ...b.nodes, ...scaleNodes, int, cast, mul],
    };
  }
  return null;
}

/** Reshape of a constant (the bias of the dynamic form's ConvInteger: Reshape(b, [1, C, 1, 1])). */
function constantOf(v: Value | null | undefined): Value | null {
  if (!v) return null;
  if (v.initializer || v.producer?.opType === 'Constant') return v;
  const p = v.producer;
  return p && (p.opType === 'Reshape' || p.opType === 'Unsqueeze') ? constantOf(p.inputs[0]) : null;
}

/** The float op a node computes (its quantized forms read as float ops); null for parts of a larger reading. */
export function floatOf(node: Node): FloatOp {
  const form = QLINEAR[keyOf(node)];
  if (form) {
    // an operand DynamicQuantizeLinear made (MatMulIntegerToFloat) stands for the float it read
    const operands = form.operands.map((i) => dynamicOperand(node.inputs[i]));
    const inputQuant = form.operandParams.map(([s, z], k) => (s >= 0 && !operands[k]?.nodes.length ? params(node, s, z) : undefined));
    const out = form.output && node.inputs[form.output[0]] ? params(node, form.output[0], form.output[1]) : undefined;
    return {
      opType: form.op,
      domain: '',
      inputs: operands.map((o) => o.value),
      outputs: node.outputs,
      node,
      nodes: [...operands.flatMap((o) => o.nodes), node],
      inputQuant,
      ...(out ? { outputQuant: out } : {}),
    };
  }
  if (keyOf(node) === 'com.microsoft.QLinearConcat') {
    const n = Math.floor((node.inputs.length - 2) / 3);
    return {
      opType: 'Concat',
      domain: '',
      inputs: Array.from({ length: n }, (_, i) => node.inputs[2 + 3 * i] ?? null),
      outputs: node.outputs,
      node,
      nodes: [node],
      inputQuant: Array.from({ length: n }, (_, i) => params(node, 3 + 3 * i, 4 + 3 * i)),
      outputQuant: params(node, 0, 1),
    };
  }
  if (node.opType === 'Mul') {
    const product = integerProduct(node);
    if (product) return product;
  }
  // ConvInteger's bias is an Add after the scaling: Conv(x, W, b) as a whole
  if (node.opType === 'Add' && node.domain === '' && node.inputs.length === 2) {
    for (const k of [0, 1]) {
      const p = node.inputs[k]?.producer;
      const bias = constantOf(node.inputs[1 - k]);
      const product = p && bias ? integerProduct(p) : null;
      if (product?.opType === 'Conv') return { ...product, inputs: [...product.inputs, bias], outputs: node.outputs, nodes: [...product.nodes, node] };
    }
  }
  return plainOp(node);
}

/** Walks back from `v` over QuantizeLinear / DequantizeLinear: the value it stands for, and the steps passed. */
export function dequantized(v: Value): { value: Value; steps: Node[] } {
  const steps: Node[] = [];
  let cur = v;
  for (let i = 0; i < 8; i++) {
    const p = cur.producer;
    if (!p || !isQuantizeStep(p) || !p.inputs[0]) break;
    steps.push(p);
    cur = p.inputs[0];
  }
  return { value: cur, steps };
}

/** The float op that computed the value `v` stands for (QuantizeLinear / DequantizeLinear read through); null for graph inputs and initializers. */
export function producerOp(v: Value | null | undefined): FloatOp | null {
  if (!v) return null;
  const { value, steps } = dequantized(v);
  const p = value.producer;
  if (!p) return null;
  const op = floatOf(p);
  return steps.length ? { ...op, nodes: [...steps, ...op.nodes] } : op;
}

/** The last node of a dynamic product that starts with `int` (MatMulInteger → Cast → Mul [→ Add bias]). */
function productOf(int: Node): FloatOp | null {
  const cast = int.outputs[0]?.users().find((u) => u.opType === 'Cast');
  const mul = cast?.outputs[0]?.users().find((u) => u.opType === 'Mul');
  if (!mul) return null;
  const product = integerProduct(mul);
  if (!product || product.node !== int) return null;
  const add = product.opType === 'Conv' && mul.outputs[0]!.users().length === 1 ? mul.outputs[0]!.users()[0]! : null;
  const withBias = add?.opType === 'Add' ? floatOf(add) : null;
  return withBias && withBias.node === int ? withBias : product;
}

/**
 * The float ops that read `v` (Shape and Size excluded): through QuantizeLinear /
 * DequantizeLinear steps and DynamicQuantizeLinear, with `v` in the input slots it
 * reaches (so that `op.inputs[0] === v` holds for an op that reads it quantized).
 */
export function readerOps(v: Value): FloatOp[] {
  const out: FloatOp[] = [];
  const seen = new Set<Node>();
  const visit = (cur: Value, steps: Node[], depth: number) => {
    for (const u of cur.users()) {
      if (u.opType === 'Shape' || u.opType === 'Size' || seen.has(u)) continue;
      if (isQuantizeStep(u) && u.inputs[0] === cur && depth < 8) {
        visit(u.outputs[0]!, [...steps, u], depth + 1);
        continue;
      }
      let op: FloatOp | null;
      if (u.opType === 'DynamicQuantizeLinear' && u.inputs[0] === cur) {
        for (const r of u.outputs[0]!.users()) {
          const product = r.opType === 'MatMulInteger' || r.opType === 'ConvInteger' ? productOf(r) : quantFormOf(r) === 'dynamic' ? floatOf(r) : null;
          if (product && !seen.has(product.node)) {
            seen.add(product.node);
            out.push(substitute(product, cur, v, steps));
          }
        }
        continue;
      }
      if ((u.opType === 'MatMulInteger' || u.opType === 'ConvInteger') && u.domain === '') op = productOf(u);
      else op = floatOf(u);
      if (!op || seen.has(op.node)) continue;
      seen.add(op.node);
      out.push(substitute(op, cur, v, steps));
    }
  };
  visit(v, [], 0);
  return out;
}

/** `op` as read from `v`: the value it reaches (`cur`, after `steps`) stands for `v`. */
function substitute(op: FloatOp, cur: Value, v: Value, steps: Node[]): FloatOp {
  if (cur === v && !steps.length) return op;
  return { ...op, inputs: op.inputs.map((x) => (x === cur ? v : x)), nodes: [...steps, ...op.nodes] };
}

// ---- what a region's quantization depends on ----------------------------------------------------

/** The (scale, zero point) inputs of each quantized op, by op. */
const PARAM_SLOTS: Record<string, number[]> = {
  QuantizeLinear: [1, 2],
  DequantizeLinear: [1, 2],
  'com.microsoft.QuantizeLinear': [1, 2],
  'com.microsoft.DequantizeLinear': [1, 2],
  MatMulInteger: [3],
  ConvInteger: [3],
};

/** The scales and zero points a node of a quantized graph reads (empty for other nodes). */
function quantParamsOf(node: Node): Value[] {
  const key = keyOf(node);
  const form = QLINEAR[key];
  let slots = PARAM_SLOTS[key] ?? [];
  if (form) slots = [...form.operandParams.flat(), ...(form.output ?? [])].filter((i) => i >= 0);
  else if (key === 'com.microsoft.QLinearConcat') slots = node.inputs.map((_, i) => i).filter((i) => i < 2 || (i - 2) % 3 !== 0);
  else if (node.opType === 'Mul') {
    const product = integerProduct(node);
    // the scale of a dynamic product (s · s_w): its static part is s_w
    if (product) {
      const scale: Value | null | undefined = node.inputs.find((x) => x?.producer?.opType !== 'Cast');
      const p: Node | null | undefined = scale?.producer;
      if (p?.opType === 'Mul') return p.inputs.filter((x): x is Value => !!x);
      return scale ? [scale] : [];
    }
  }
  return slots.map((i) => node.inputs[i]).filter((x): x is Value => !!x);
}

/** Which form a quantized node belongs to (for reports); null for a float op. */
export function quantFormOf(node: Node): 'QDQ' | 'QOperator' | 'dynamic' | null {
  if (isQuantizeStep(node)) return 'QDQ';
  const key = keyOf(node);
  if (key === 'com.microsoft.MatMulIntegerToFloat' || key === 'com.microsoft.DynamicQuantizeMatMul') return 'dynamic';
  if (QLINEAR[key] || key === 'com.microsoft.QLinearConcat') return 'QOperator';
  if (['DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger'].includes(node.opType)) return 'dynamic';
  return null;
}

/**
 * A scale or zero point known when the model is converted: a constant, something
 * computed from constants only, or what a DynamicQuantizeLinear computes from its
 * input at run time (the dynamic form's own scales). Not a graph input.
 */
function isStaticParam(v: Value, depth = 0): boolean {
  if (v.initializer) return true;
  const p = v.producer;
  if (!p) return false;
  if (p.opType === 'Constant' || p.opType === 'DynamicQuantizeLinear') return true;
  if (depth > 6) return false;
  return p.inputs.every((x) => !x || isStaticParam(x, depth + 1));
}

/** Two values the walkers reached that hold the same tensor: equal, or the same tensor read through equal Quantize/DequantizeLinear steps (dedicated QDQ pairs per reader). */
export function sameReading(a: Value, b: Value): boolean {
  if (a === b) return true;
  const da = dequantized(a);
  const db = dequantized(b);
  if (da.value !== db.value || da.steps.length !== db.steps.length) return false;
  return da.steps.every((s, i) => sameStep(s, db.steps[i]!));
}

function sameStep(s: Node, t: Node): boolean {
  if (s.opType !== t.opType || s.domain !== t.domain || s.getInt('axis') !== t.getInt('axis')) return false;
  return [1, 2].every((i) => sameConstant(s.inputs[i] ?? null, t.inputs[i] ?? null));
}

function sameConstant(a: Value | null, b: Value | null): boolean {
  if (a === b) return true;
  const ta = a?.initializer ?? (a?.producer?.opType === 'Constant' ? a.producer.getTensor('value') : undefined);
  const tb = b?.initializer ?? (b?.producer?.opType === 'Constant' ? b.producer.getTensor('value') : undefined);
  if (!ta || !tb || ta.dtype !== tb.dtype || ta.elementCount !== tb.elementCount || ta.elementCount > 4096) return false;
  if (ta.storage.kind !== 'inline' || tb.storage.kind !== 'inline') return false;
  const x = ta.toNumbers();
  const y = tb.toNumbers();
  return x.every((v, i) => v === y[i]);
}

/** How a quantized value is dequantized, from what produced it (QuantizeLinear, a QOperator op); undefined when unknown. */
export function quantOfValue(v: Value): QuantParams | undefined {
  const p = v.producer;
  if (!p) return undefined;
  if (p.opType === 'QuantizeLinear' && QUANT_DOMAINS.has(p.domain)) return params(p, 1, 2);
  return floatOf(p).outputQuant;
}

/** A quantized module's edges: what the replacement reads and writes (find-attention.ts fills it). */
export interface RegionQuantization {
  /** Forms met in the module. */
  forms: ('QDQ' | 'QOperator' | 'dynamic')[];
  /** The module reads its input as a quantized tensor: the replacement dequantizes it with these. */
  input?: QuantParams;
  /** The module's output is a quantized tensor: the replacement quantizes its result with these. */
  output?: QuantParams;
  /** Why the module cannot be replaced as read (it is then kept, with a warning); absent when it can. */
  problem?: string;
}

/** Most nodes `regionNodes` visits (a module is a few dozen nodes; the bound keeps a malformed graph cheap). */
const REGION_LIMIT = 4096;

/**
 * The nodes `output` is computed from, back to `input` (and the tensor `input`
 * reads, for dedicated QDQ pairs): the module, its shape arithmetic and the
 * quantization of its weights.
 */
function regionNodes(input: Value, output: Value): Node[] {
  const stop = new Set<Value>([input, dequantized(input).value]);
  const seen = new Set<Node>();
  const stack: Node[] = output.producer ? [output.producer] : [];
  while (stack.length && seen.size < REGION_LIMIT) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    // a shape query reads no values: what it reads is not part of the module
    if (n.opType === 'Shape' || n.opType === 'Size') continue;
    for (const x of n.inputs) {
      if (!x || stop.has(x) || !x.producer || seen.has(x.producer)) continue;
      if (sameReading(x, input)) continue;
      stack.push(x.producer);
    }
  }
  return [...seen];
}

/** What a module read through quantization needs at its edges, and whether its quantization can be read at all. */
export function describeQuantization(
  input: Value,
  output: Value,
  io: { input?: QuantParams; output?: QuantParams; inputQuantized: boolean; outputQuantized: boolean },
): RegionQuantization | undefined {
  const nodes = regionNodes(input, output);
  const forms = new Set<RegionQuantization['forms'][number]>();
  const params: Value[] = [];
  for (const n of nodes) {
    const form = quantFormOf(n);
    if (form) forms.add(form);
    params.push(...quantParamsOf(n));
  }
  for (const q of [io.input, io.output]) if (q) params.push(q.scale, ...(q.zeroPoint ? [q.zeroPoint] : []));
  if (!forms.size && !io.inputQuantized && !io.outputQuantized) return undefined;
  // QOperator models keep QuantizeLinear/DequantizeLinear where float ops meet quantized ones: that is still QOperator
  if (forms.has('QOperator')) forms.delete('QDQ');
  const order = ['QDQ', 'QOperator', 'dynamic'] as const;
  const out: RegionQuantization = { forms: order.filter((f) => forms.has(f)), ...(io.input ? { input: io.input } : {}), ...(io.output ? { output: io.output } : {}) };
  const unknown = [...new Set(params.filter((p) => !isStaticParam(p)))];
  if (unknown.length) {
    const names = unknown.slice(0, 3).map((v) => `"${v.name}"`).join(', ');
    out.problem = `its quantization scales or zero points ${names}${unknown.length > 3 ? ` (${unknown.length} in all)` : ''} are not constants (graph inputs or computed at run time), so the module cannot be read as float`;
  } else if (io.inputQuantized && !io.input) out.problem = `its input "${input.name}" is a quantized tensor whose scale is not known`;
  else if (io.outputQuantized && !io.output) out.problem = `its output "${output.name}" is a quantized tensor whose scale is not known`;
  return out;
}
