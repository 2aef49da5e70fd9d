/**
 * Static activation scales after a conversion. A statically quantized model (QDQ,
 * QOperator) holds one (scale, zero point) per activation tensor, calibrated on the
 * model it was made from; the ΔConvBlocks compute something else than the attention
 * they replace, so the activations after them may leave those ranges and would be
 * clipped. `widenRanges` widens a parameter pair to the union of the range it holds
 * and the range observed in the converted model's float twin (float-twin.ts), never
 * narrowing it — a tensor whose values stay in range keeps its parameters exactly —
 * and requantizes the int32 biases whose scale is tied to a widened input scale
 * (QLinearConv / QGemm, and a QDQ Conv / Gemm whose bias scale is input · weight).
 */
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import { floatOf, isQuantizeStep, quantFormOf } from './reading.js';

/** A static activation quantization of the model: its parameters and the nodes that read them. */
export interface ActivationParams {
  scale: Value;
  zeroPoint: Value | null;
  nodes: Node[];
}

export interface WidenedRange {
  /** The scale initializer. */
  scale: string;
  from: [number, number];
  to: [number, number];
}

/**
 * What a recalibration changed outside the converted layers, recorded in the model
 * (`deltac.recalibrated`) so that the check after a conversion (runtime/outside-nodes.ts)
 * tells these edits from damage: initializers rewritten in place (scales, zero points),
 * values added (requantized biases, their scales and DequantizeLinear nodes), and node
 * inputs that read an added value where they read another before (added → original).
 */
export interface RecalibrationEdits {
  changed: string[];
  added: string[];
  replaced: Record<string, string>;
}

export const RECALIBRATION_KEY = 'deltac.recalibrated';

/** Adds `edits` to what the model records (a model recalibrated twice keeps both). */
export function recordRecalibration(model: Model, edits: RecalibrationEdits): void {
  const was = readRecalibration(model);
  const merged: RecalibrationEdits = {
    changed: [...new Set([...(was?.changed ?? []), ...edits.changed])],
    added: [...new Set([...(was?.added ?? []), ...edits.added])],
    replaced: { ...(was?.replaced ?? {}), ...edits.replaced },
  };
  model.metadataProps = model.metadataProps.filter(([k]) => k !== RECALIBRATION_KEY);
  if (merged.changed.length || merged.added.length) model.metadataProps.push([RECALIBRATION_KEY, JSON.stringify(merged)]);
}

export function readRecalibration(model: Model): RecalibrationEdits | null {
  const raw = model.metadataProps.find(([k]) => k === RECALIBRATION_KEY)?.[1];
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as Partial<RecalibrationEdits>;
    const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((v): v is string => typeof v === 'string') : []);
    const replaced = r.replaced && typeof r.replaced === 'object' ? Object.fromEntries(Object.entries(r.replaced).filter(([, v]) => typeof v === 'string')) : {};
    return { changed: strings(r.changed), added: strings(r.added), replaced };
  } catch {
    return null;
  }
}

const INT_RANGE: Partial<Record<DataType, [number, number]>> = {
  [DataType.UINT8]: [0, 255],
  [DataType.INT8]: [-128, 127],
  [DataType.UINT16]: [0, 65535],
  [DataType.INT16]: [-32768, 32767],
};

const isActivation = (v: Value | null | undefined) => !!v && !v.initializer && v.producer?.opType !== 'Constant';

/**
 * Every activation quantization with a scalar scale initializer, by scale name:
 * QuantizeLinear / DequantizeLinear of computed tensors, and the operand and result
 * parameters of QOperator ops.
 */
export function activationParams(model: Model): Map<string, ActivationParams> {
  const out = new Map<string, ActivationParams>();
  const add = (scale: Value | null | undefined, zeroPoint: Value | null | undefined, node: Node) => {
    if (!scale?.initializer || scale.initializer.elementCount !== 1 || (zeroPoint && !zeroPoint.initializer)) return;
    const hit = out.get(scale.name);
    if (hit) {
      if (!hit.nodes.includes(node)) hit.nodes.push(node);
    } else out.set(scale.name, { scale, zeroPoint: zeroPoint ?? null, nodes: [node] });
  };
  for (const n of model.graph.nodes) {
    if (isQuantizeStep(n)) {
      if (isActivation(n.inputs[0])) add(n.inputs[1], n.inputs[2], n);
      continue;
    }
    if (quantFormOf(n) !== 'QOperator') continue;
    const op = floatOf(n);
    op.inputQuant?.forEach((p, i) => p && isActivation(op.inputs[i]) && add(p.scale, p.zeroPoint, n));
    if (op.outputQuant) add(op.outputQuant.scale, op.outputQuant.zeroPoint, n);
  }
  return out;
}

function intTensor(dtype: DataType, dims: number[], values: number[]): Tensor {
  const typed =
    dtype === DataType.UINT8
      ? Uint8Array.from(values)
      : dtype === DataType.INT8
        ? Int8Array.from(values)
        : dtype === DataType.UINT16
          ? Uint16Array.from(values)
          : dtype === DataType.INT16
            ? Int16Array.from(values)
            : Int32Array.from(values);
  return new Tensor(dtype, dims, { kind: 'inline', bytes: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), encoding: 'raw' });
}

/** The range a (scale, zero point) pair represents, and the parameters for a wider one of the same type. */
function represented(p: ActivationParams): { lo: number; hi: number; step: number; widen: (lo: number, hi: number) => { scale: number; zeroPoint: number } } | null {
  const s = p.scale.initializer!.toFloat32()[0]!;
  const zdt = p.zeroPoint?.initializer?.dtype ?? DataType.UINT8;
  const range = INT_RANGE[zdt];
  if (!range || !(s > 0)) return null;
  const [qmin, qmax] = range;
  const z = p.zeroPoint ? p.zeroPoint.initializer!.toNumbers()[0]! : 0;
  const symmetric = qmin < 0 && z === 0;
  return {
    lo: (qmin - z) * s,
    hi: (qmax - z) * s,
    step: s,
    widen(lo, hi) {
      let zeroPoint = 0;
      let scale: number;
      if (!p.zeroPoint && qmin === 0) scale = Math.max(hi, 0) / qmax;
      else if (symmetric || !p.zeroPoint) scale = Math.max(Math.abs(lo), Math.abs(hi)) / qmax;
      else {
        scale = (hi - lo) / (qmax - qmin);
        zeroPoint = Math.min(qmax, Math.max(qmin, Math.round(qmin - lo / scale)));
        // the rounded zero point shifts the range by up to half a step: a scale that still holds [lo, hi]
        scale = Math.max(scale, zeroPoint > qmin ? lo / (qmin - zeroPoint) : 0, zeroPoint < qmax ? hi / (qmax - zeroPoint) : 0);
      }
      // stored as float32: rounded up, so that the range is not narrower than asked
      const f = Math.fround(scale);
      return { scale: f < scale ? Math.fround(f * (1 + 2 ** -23)) : f, zeroPoint };
    },
  };
}

/**
 * Widens the parameters named in `observed` (scale name → [min, max] seen in the float
 * twin) that do not hold the observed range; returns what changed.
 */
export function widenRanges(model: Model, observed: ReadonlyMap<string, [number, number]>): { widened: WidenedRange[]; edits: RecalibrationEdits } {
  const params = activationParams(model);
  const widened: WidenedRange[] = [];
  const edits: RecalibrationEdits = { changed: [], added: [], replaced: {} };
  const oldScale = new Map<string, number>();
  for (const [name, [obsLo, obsHi]] of observed) {
    const p = params.get(name);
    const r = p && represented(p);
    if (!p || !r || !Number.isFinite(obsLo) || !Number.isFinite(obsHi)) continue;
    // within half a step of the range: nothing is clipped that rounding would not move anyway
    if (obsLo >= r.lo - r.step / 2 && obsHi <= r.hi + r.step / 2) continue;
    const lo = Math.min(r.lo, obsLo);
    const hi = Math.max(r.hi, obsHi);
    const next = r.widen(lo, hi);
    if (!(next.scale > 0)) continue;
    const st = p.scale.initializer!;
    oldScale.set(name, st.toFloat32()[0]!);
    p.scale.initializer = Tensor.fromFloat32([next.scale], [...st.dims], st.dtype);
    edits.changed.push(p.scale.name);
    if (p.zeroPoint) {
      p.zeroPoint.initializer = intTensor(p.zeroPoint.initializer!.dtype, [...p.zeroPoint.initializer!.dims], [next.zeroPoint]);
      edits.changed.push(p.zeroPoint.name);
    }
    const now = represented(p)!;
    widened.push({ scale: name, from: [r.lo, r.hi], to: [now.lo, now.hi] });
  }
  if (oldScale.size) requantizeBiases(model, oldScale, edits);
  return { widened, edits };
}

/** int32 biases whose scale is (input scale · weight scale), for the inputs whose scale changed. */
function requantizeBiases(model: Model, oldScale: ReadonlyMap<string, number>, edits: RecalibrationEdits): void {
  const g = model.graph;
  const rescaled = (b: Value, factor: number | number[], name: string): Value => {
    const values = b.initializer!.toNumbers();
    const q = values.map((x, i) => Math.max(-2147483648, Math.min(2147483647, Math.round(x * (Array.isArray(factor) ? factor[i % factor.length]! : factor)))));
    const v = g.addInitializer(name, intTensor(DataType.INT32, [...b.initializer!.dims], q));
    edits.added.push(v.name);
    return v;
  };
  for (const n of g.nodes) {
    // QOperator: QLinearConv (x_scale 1, bias 8), QGemm (a_scale 1, C 6); the bias is in units of x_scale · w_scale
    const biasSlot = n.opType === 'QLinearConv' ? 8 : n.opType === 'QGemm' && n.domain === 'com.microsoft' ? 6 : -1;
    if (biasSlot >= 0) {
      const xs = n.inputs[1];
      const b = n.inputs[biasSlot];
      const before = xs && oldScale.get(xs.name);
      if (before && b?.initializer && b.initializer.dtype === DataType.INT32) {
        const nb = rescaled(b, before / xs.initializer!.toFloat32()[0]!, `${b.name}_rescaled`);
        n.setInput(biasSlot, nb);
        edits.replaced[nb.name] = b.name;
      }
      continue;
    }
    // QDQ: Conv / Gemm reading DQ(x, s_x), DQ(W, s_w) and DQ(b_int32, s_b) with s_b = s_x · s_w
    if ((n.opType !== 'Conv' && n.opType !== 'Gemm') || n.domain !== '') continue;
    const [x, w, bias] = n.inputs.map((v) => (v?.producer && isQuantizeStep(v.producer) && v.producer.opType === 'DequantizeLinear' ? v.producer : null));
    const xs = x?.inputs[1];
    const before = xs && oldScale.get(xs.name);
    const bq = bias?.inputs[0];
    const bs = bias?.inputs[1];
    const ws = w?.inputs[1];
    if (!before || !bias || !bq?.initializer || bq.initializer.dtype !== DataType.INT32 || !bs?.initializer || !ws?.initializer) continue;
    const wScale = Array.from(ws.initializer.toFloat32());
    const bScale = Array.from(bs.initializer.toFloat32());
    const tied = bScale.every((s, i) => Math.abs(s - before * wScale[i % wScale.length]!) <= 1e-6 * Math.abs(s));
    if (!tied) continue;
    const now = xs.initializer!.toFloat32()[0]!;
    const newScale = g.addInitializer(`${bs.name}_rescaled`, Tensor.fromFloat32(bScale.map((_, i) => now * wScale[i % wScale.length]!), [...bs.initializer.dims], bs.initializer.dtype));
    const newBias = rescaled(bq, before / now, `${bq.name}_rescaled`);
    const dq = g.op('DequantizeLinear', bias.inputs[2] ? [newBias, newScale, bias.inputs[2]] : [newBias, newScale], {
      name: `${bias.name || 'DequantizeLinear'}_rescaled`,
      domain: bias.domain,
      attributes: Object.fromEntries(bias.attributes),
      before: n,
    });
    edits.added.push(newScale.name, dq.name);
    edits.replaced[dq.name] = bias.outputs[0]!.name;
    n.setInput(2, dq);
  }
}
