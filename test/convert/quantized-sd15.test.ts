/**
 * SD1.5-mini in the four forms onnxruntime's quantizer writes, made by the test
 * quantizer (test/fixtures/quantize): dynamic, QDQ w8a8, QDQ w8a16 (opset 17, so the
 * com.microsoft Quantize/DequantizeLinear) and QOperator.
 */
import { afterAll } from 'vitest';
import { type FormName, sd15Quantized } from '../fixtures/quantize/shared-models.js';
import { makeTempDir } from '../helpers/paths.js';
import { type ErrorRow, type QuantizedCase, describeQuantized, printRows } from './quantized-suite.js';

const tmp = makeTempDir('deltac-quantized-sd15-');
afterAll(tmp.cleanup);
const rows: ErrorRow[] = [];
printRows(rows);

const sd15 = (form: FormName, forms: string[], input: string): QuantizedCase => ({
  model: 'sd15-mini',
  form,
  file: () => sd15Quantized(form, tmp.dir),
  self: 16,
  cross: 16,
  forms,
  input,
});

for (const c of [sd15('dyn', ['dynamic'], 'f32'), sd15('qdq', ['QDQ'], 'f32'), sd15('qdq16', ['QDQ'], 'f32'), sd15('qop', ['QOperator'], 'u8')]) {
  describeQuantized(c, tmp.dir, rows);
}
