/**
 * The synthetic exports (test/fixtures/exports) quantized in every shape deltac must
 * read (test/fixtures/quantize): QDQ with 8- and 16-bit activations (com.microsoft
 * Quantize/DequantizeLinear below opset 21), per-tensor and per-channel weights,
 * weights without zero points, symmetric int8 activations, a pair per reader, fp16
 * with Cast islands or fp16 scales (opset 23); QOperator (uint8 and int8); dynamic, with and without quantized
 * score products. For each:
 *  1. findAttention finds the modules it finds in the float export (kind, module
 *     path, heads, channels), and nothing it cannot trace;
 *  2. every self-attention converts, every cross-attention stays;
 *  3. after recalibration, the converted quantized model is as far from the converted
 *     float model as the quantized export is from the float export, up to 2×.
 */
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConversionReport, convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import { float32ToHalfBits } from '../../src/ir/half.js';
import type { Model } from '../../src/ir/model.js';
import { type FindAttentionResult, findAttention } from '../../src/passes/attention/find-attention.js';
import { recalibrateQuantization } from '../../src/runtime/recalibrate.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { VariantHarness } from '../fixtures/exports/harness.js';
import { type AttentionStyle, type BuiltExport, type Feed, type Layout, buildExport, makeFeeds } from '../fixtures/exports/index.js';
import { type RunOutput, relativeError, runModel } from '../fixtures/exports/runtime.js';
import { type QuantizeOptions, type Ranges, calibrate, quantizeModel } from '../fixtures/quantize/index.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-quantized-variants-');
afterAll(tmp.cleanup);
const harness = new VariantHarness(tmp.dir);

interface Case {
  layout: Layout;
  style: AttentionStyle;
  dtype?: 'f32' | 'f16';
  q: QuantizeOptions;
  /** What the report says the modules were read through. */
  forms: string[];
  /** Ops the quantized export must contain (the form is really written). */
  ops: string[];
}

const CASES: Case[] = [
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'DequantizeLinear'] },
  // per-channel weights (DequantizeLinear axis) stored without zero points, a QDQ pair per reader
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qdq', perChannel: true, omitZeroPoints: true, dedicatedPairs: true }, forms: ['QDQ'], ops: ['DequantizeLinear'] },
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qdq', activation: 'i8', symmetricActivation: true }, forms: ['QDQ'], ops: ['QuantizeLinear'] },
  // 16-bit activations below opset 21: com.microsoft Quantize/DequantizeLinear
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qdq', activation: 'u16', weight: 'u8' }, forms: ['QDQ'], ops: ['com.microsoft.QuantizeLinear', 'com.microsoft.DequantizeLinear'] },
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qdq', activation: 'i16', weight: 'i8', perChannel: true }, forms: ['QDQ'], ops: ['com.microsoft.QuantizeLinear'] },
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'qoperator', activation: 'i8' }, forms: ['QOperator'], ops: ['com.microsoft.QLinearSoftmax', 'com.microsoft.QGemm', 'QLinearConv'] },
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'dynamic', perChannel: true }, forms: ['dynamic'], ops: ['MatMulInteger', 'ConvInteger', 'DynamicQuantizeLinear'] },
  // q·kᵀ and probs·v as MatMulInteger products of two DynamicQuantizeLinear outputs
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'dynamic', dynamicActivations: true }, forms: ['dynamic'], ops: ['MatMulInteger'] },
  // fp16 below opset 19: QDQ through Cast islands
  { layout: 'sd15', style: 'ts-sdpa', dtype: 'f16', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'Cast'] },
  { layout: 'sd15', style: 'ts-torch1', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear'] },
  { layout: 'sd15', style: 'ts-einsum', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'Einsum'] },
  { layout: 'sd15', style: 'ms-mha', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'com.microsoft.MultiHeadAttention'] },
  { layout: 'sd15', style: 'dynamo-sdpa', q: { form: 'qoperator', perChannel: true }, forms: ['QOperator'], ops: ['QLinearMatMul', 'com.microsoft.QLinearAdd'] },
  // opset 23 (ONNX Attention): 16-bit Quantize/DequantizeLinear in the ONNX domain, and fp16 scales on fp16 tensors
  { layout: 'sd15', style: 'onnx-attention', q: { form: 'qdq', activation: 'u16', weight: 'u8' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'Attention'] },
  { layout: 'sd15', style: 'onnx-attention', dtype: 'f16', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear', 'Attention'] },
  // SDXL: linear proj_in, two transformer blocks per module
  { layout: 'sdxl', style: 'ts-sdpa', q: { form: 'qdq' }, forms: ['QDQ'], ops: ['QuantizeLinear'] },
  { layout: 'dit', style: 'ts-sdpa', q: { form: 'qoperator' }, forms: ['QOperator'], ops: ['QLinearMatMul', 'com.microsoft.QLinearSoftmax', 'QLinearConv'] },
  { layout: 'dit', style: 'ts-sdpa', q: { form: 'dynamic' }, forms: ['dynamic'], ops: ['ConvInteger'] },
  // onnxruntime's fusions of the dynamic form, as optimized models are saved
  { layout: 'sd15', style: 'ts-sdpa', q: { form: 'dynamic', fusedDynamic: 'DynamicQuantizeMatMul' }, forms: ['dynamic'], ops: ['com.microsoft.DynamicQuantizeMatMul'] },
  { layout: 'dit', style: 'ts-sdpa', q: { form: 'dynamic', fusedDynamic: 'MatMulIntegerToFloat' }, forms: ['dynamic'], ops: ['com.microsoft.MatMulIntegerToFloat'] },
];

function toOrt(feeds: Record<string, Feed>): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(feeds).map(([k, f]) => [k, f.dtype === DataType.FLOAT16 ? new ort.Tensor('float16', Uint16Array.from(f.data, (x) => float32ToHalfBits(x)), f.dims) : new ort.Tensor('float32', f.data, f.dims)]),
  );
}

const describeModules = (f: FindAttentionResult) => f.matches.map((m) => `${m.kind} ${m.modulePath} heads ${m.heads} channels ${m.channels}`);
const opsOf = (m: Model) => new Set(m.graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)));

interface Run {
  float: BuiltExport;
  floatFound: FindAttentionResult;
  quantized: Model;
  found: FindAttentionResult;
  report: ConversionReport;
  /** The quantized export vs the float one, the converted quantized vs the converted float. */
  quantError: number;
  convertedError: number;
  widened: number;
}

/** The float export of a layout/style/dtype, its calibration and its outputs before and after conversion (shared by its cases). */
interface FloatRun {
  float: BuiltExport;
  floatFound: FindAttentionResult;
  feeds: Record<string, Feed>;
  ranges: Ranges;
  original: RunOutput[];
  converted: RunOutput[];
}

const floats = new Map<string, Promise<FloatRun>>();

function floatRun(c: Case): Promise<FloatRun> {
  const options = { layout: c.layout, style: c.style, dtype: c.dtype ?? 'f32' } as const;
  const key = JSON.stringify(options);
  let run = floats.get(key);
  if (!run) {
    run = (async () => {
      const float = buildExport(options);
      const feeds = makeFeeds(float);
      const ranges = await calibrate(float.model, [3, 4, 5].map((seed) => toOrt(makeFeeds(float, seed))));
      const floatFound = findAttention(float.model);
      const original = await runModel(float.model, feeds);
      convert(float.model, { weights: Checkpoint.open(harness.checkpoint(c.layout)) });
      return { float, floatFound, feeds, ranges, original, converted: await runModel(float.model, feeds) };
    })();
    floats.set(key, run);
  }
  return run;
}

async function quantizedRun(c: Case): Promise<Run> {
  const f = await floatRun(c);
  const quantized = quantizeModel(buildExport({ layout: c.layout, style: c.style, dtype: c.dtype ?? 'f32' }).model, f.ranges, c.q);
  const found = findAttention(quantized);
  const quantOut = await runModel(quantized, f.feeds);
  const report = convert(quantized, { weights: Checkpoint.open(harness.checkpoint(c.layout)) });
  const recal = await recalibrateQuantization(quantized, report.layers.filter((l) => l.status === 'converted').map((l) => l.node!));
  const quantConverted = await runModel(quantized, f.feeds);
  return {
    float: f.float,
    floatFound: f.floatFound,
    quantized,
    found,
    report,
    quantError: relativeError(quantOut, f.original),
    convertedError: relativeError(quantConverted, f.converted),
    widened: recal.widened.length,
  };
}

const rows: string[] = [];
afterAll(() => {
  if (rows.length) console.info(['| export | quantization | quantized vs float | converted: quantized vs float | ratio | ranges widened |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n'));
});

for (const c of CASES) {
  const label = `${c.layout} · ${c.style}${c.dtype === 'f16' ? ' · f16' : ''} · ${JSON.stringify(c.q)}`;
  describe(label, () => {
    let run: Run;
    beforeAll(async () => {
      run = await quantizedRun(c);
      rows.push(`| ${c.layout} ${c.style}${c.dtype === 'f16' ? ' f16' : ''} | ${JSON.stringify(c.q)} | ${run.quantError.toExponential(2)} | ${run.convertedError.toExponential(2)} | ${(run.convertedError / run.quantError).toFixed(2)} | ${run.widened} |`);
    }, 300_000);

    it('is written in the form asked for, and read as the float export is', () => {
      const ops = opsOf(run.quantized);
      for (const op of c.ops) expect(ops.has(op), op).toBe(true);
      expect(run.found.unmatched.map((u) => `${u.node.name}: ${u.reason}`)).toEqual([]);
      expect(describeModules(run.found)).toEqual(describeModules(run.floatFound));
    });

    it('converts every self-attention and keeps every cross-attention; the report says how each module was read', () => {
      const { report, float } = run;
      expect(report.layers.map((l) => l.status)).toEqual(float.selfBlocks.map(() => 'converted'));
      expect(report.crossAttention).toBe(float.crossCount);
      for (const l of report.layers) {
        expect(l.quantization?.forms).toEqual(c.forms);
        expect(l.quantization?.block).toBe(c.dtype === 'f16' ? 'f16' : 'f32');
      }
      const again = findAttention(run.quantized);
      expect(again.matches.filter((m) => m.kind === 'self')).toHaveLength(0);
      expect(again.matches.filter((m) => m.kind === 'cross')).toHaveLength(float.crossCount);
    });

    it('adds no error beyond the quantization (converted quantized vs converted float ≤ 2 × quantized vs float)', () => {
      expect(run.quantError).toBeGreaterThan(0);
      // static forms had their ranges after the blocks widened (fp16 twins included); dynamic ones need none
      if (c.q.form === 'dynamic') expect(run.widened).toBe(0);
      else expect(run.widened).toBeGreaterThan(0);
      expect(run.convertedError, `${run.convertedError.toExponential(2)} vs ${run.quantError.toExponential(2)}`).toBeLessThanOrEqual(2 * run.quantError);
    });
  });
}
