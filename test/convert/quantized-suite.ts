/**
 * The checks every quantized form of a shared fixture model goes through
 * (quantized-pixart.test.ts, quantized-sd15.test.ts), as issue 20 states them:
 *  1. every self-attention layer is converted and every cross-attention module is
 *     kept exactly as it was (same nodes, same inputs);
 *  2. the report says per layer which forms the module was read through, what its
 *     edges are and that the block is float; the module's int8 weights are gone;
 *  3. the region's edges are clean: a quantized input is dequantized right before
 *     the block, a quantized output quantized again right after it;
 *  4. onnxruntime runs the converted (and recalibrated) model, and its error against
 *     PyTorch's ΔConvBlock model (out*.delta) is at most twice the quantized
 *     original's error against the attention model (out*.attn).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConversionReport, convert } from '../../src/convert.js';
import type { Model } from '../../src/ir/model.js';
import { verifyModel } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { readNpy } from '../../src/runtime/npy.js';
import { OrtModel, compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { type RecalibrationResult, recalibrateQuantization } from '../../src/runtime/recalibrate.js';
import { MODELS_DIR } from '../helpers/paths.js';

export interface QuantizedCase {
  model: 'pixart-mini' | 'sd15-mini';
  form: string;
  /** The quantized model file (made on demand). */
  file: () => Promise<string>;
  self: number;
  cross: number;
  /** What the report says the modules were read through, and the element type of their input. */
  forms: string[];
  input: string;
}

/** One row of the table the suite prints: form × model → errors. */
export interface ErrorRow {
  model: string;
  form: string;
  set: string;
  original: number;
  converted: number;
}

const signature = (m: Model, names: Set<string>) =>
  m.graph.nodes.filter((n) => names.has(n.name)).map((n) => `${n.name} ${n.domain}.${n.opType}(${n.inputs.map((v) => v?.name ?? '').join(', ')})`);

/**
 * onnxruntime builds a session for a quantized SD1.5-mini in 5–25 s (the QDQ graph has
 * about 10k nodes; 16-bit com.microsoft Q/DQ are the slowest) and each case loads three
 * (float twin, original, converted): more than the default timeouts on a loaded machine.
 */
const TIMEOUT = 600_000;

export function describeQuantized(c: QuantizedCase, outDir: string, rows: ErrorRow[]): void {
  describe(`${c.model} · ${c.form}`, () => {
    const dir = path.join(MODELS_DIR, c.model);
    let file: string;
    let model: Model;
    let report: ConversionReport;
    let recalibration: RecalibrationResult;
    let crossBefore: string[];
    let crossNames: Set<string>;
    let selfWeights: string[];
    let out: string;

    beforeAll(async () => {
      file = await c.file();
      model = loadModel(file);
      const found = findAttention(model);
      crossNames = new Set(found.matches.filter((m) => m.kind === 'cross').flatMap((m) => m.nodes.map((n) => n.name)));
      crossBefore = signature(model, crossNames);
      selfWeights = found.matches.filter((m) => m.kind === 'self').flatMap((m) => m.weights.map((w) => w.name));
      report = convert(model, { weights: path.join(dir, 'delta.safetensors') });
      recalibration = await recalibrateQuantization(
        model,
        report.layers.filter((l) => l.status === 'converted').map((l) => l.node!),
      );
      out = path.join(outDir, `${c.model}.${c.form}.delta.onnx`);
      saveModel(model, out);
    }, TIMEOUT);

    it(`converts the ${c.self} self-attention layers and keeps the ${c.cross} cross-attention modules as they were`, () => {
      expect(report.layers.map((l) => l.status)).toEqual(Array(c.self).fill('converted'));
      expect(report.crossAttention).toBe(c.cross);
      expect(crossNames.size).toBeGreaterThan(c.cross);
      expect(signature(model, crossNames)).toEqual(crossBefore);
      const again = findAttention(model);
      expect(again.matches.filter((m) => m.kind === 'self')).toHaveLength(0);
      expect(again.matches.filter((m) => m.kind === 'cross')).toHaveLength(c.cross);
      expect(verifyModel(model).filter((d) => d.severity === 'error')).toEqual([]);
    });

    it('reports the forms read through, the edges and a float block per layer; the int8 weights are gone', () => {
      for (const l of report.layers) {
        expect(l.quantization?.forms).toEqual(c.forms);
        expect(l.quantization?.input.split(' ')[0]).toBe(c.input);
        expect(l.quantization?.block).toBe('f32');
        expect(l.dtype).toBe('f32');
      }
      expect(selfWeights.length).toBeGreaterThanOrEqual(4 * c.self);
      for (const w of selfWeights) expect(model.graph.initializers.has(w), w).toBe(false);
      // a quantized input is dequantized right before the block (the per-layer check cuts the region there)
      for (const l of report.layers) {
        const dq = model.graph.nodes.find((n) => n.name === `${l.node}/dequantize_input`);
        expect(!!dq, l.id).toBe(c.input !== 'f32');
        if (dq) expect(dq.opType).toBe('DequantizeLinear');
      }
    });

    it('runs in onnxruntime with no error beyond the quantization: converted vs out.delta ≤ 2 × original vs out.attn', async () => {
      const original = await OrtModel.load(file);
      const converted = await OrtModel.load(out);
      const sets = readInputFolder(dir);
      for (const [key, feeds] of sets) {
        const o = Object.values(await original.run(feeds))[0]!;
        const d = Object.values(await converted.run(feeds))[0]!;
        const attn = readNpy(path.join(dir, `${key.replace('in', 'out')}.attn.npy`));
        const delta = readNpy(path.join(dir, `${key.replace('in', 'out')}.delta.npy`));
        const row = {
          model: c.model,
          form: c.form,
          set: key,
          original: compareArrays(o.data, attn.data as Float32Array).rel,
          converted: compareArrays(d.data, delta.data as Float32Array).rel,
        };
        rows.push(row);
        expect(d.dims).toEqual(delta.shape);
        expect(row.converted, `${key}: ${row.converted.toExponential(2)} vs ${row.original.toExponential(2)}`).toBeLessThanOrEqual(2 * row.original);
        // and it is the ΔConvBlock model: closer to out.delta than to out.attn
        expect(row.converted).toBeLessThan(compareArrays(d.data, attn.data as Float32Array).rel);
      }
      await original.release();
      await converted.release();
      expect(recalibration.status).toBe(c.form === 'dyn' ? 'skipped' : 'done');
    }, TIMEOUT);
  });
}

/** Prints the measured table after a suite (form × model → errors, ratio). */
export function printRows(rows: ErrorRow[]): void {
  afterAll(() => {
    if (!rows.length) return;
    const lines = rows.map((r) => `| ${r.model} | ${r.form} | ${r.set} | ${r.original.toExponential(2)} | ${r.converted.toExponential(2)} | ${(r.converted / r.original).toFixed(2)} |`);
    console.info(['| model | form | inputs | original vs out.attn | converted vs out.delta | ratio |', '| --- | --- | --- | --- | --- | --- |', ...lines].join('\n'));
  });
}
