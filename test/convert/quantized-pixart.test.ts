/**
 * pixart-mini as onnxruntime 1.30's quantizer ships it in four forms
 * (../shared/models/pixart-mini-quantized): dynamic, QDQ w8a8, QDQ w8a16 (opset 21,
 * uint16 activations) and QOperator.
 */
import { afterAll } from 'vitest';
import { pixartQuantized } from '../fixtures/quantize/shared-models.js';
import { makeTempDir } from '../helpers/paths.js';
import { type ErrorRow, type QuantizedCase, describeQuantized, printRows } from './quantized-suite.js';

const tmp = makeTempDir('deltac-quantized-pixart-');
afterAll(tmp.cleanup);
const rows: ErrorRow[] = [];
printRows(rows);

const pixart = (form: 'dyn' | 'qdq' | 'qdq16' | 'qop', forms: string[], input: string): QuantizedCase => ({
  model: 'pixart-mini',
  form,
  file: async () => pixartQuantized(form),
  self: 4,
  cross: 4,
  forms,
  input,
});

for (const c of [pixart('dyn', ['dynamic'], 'f32'), pixart('qdq', ['QDQ'], 'f32'), pixart('qdq16', ['QDQ'], 'f32'), pixart('qop', ['QOperator'], 'u8')]) {
  describeQuantized(c, tmp.dir, rows);
}
