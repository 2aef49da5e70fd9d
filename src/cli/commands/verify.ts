/**
 * `deltac verify original.onnx converted.onnx --inputs dir/ [--reference out.npy,…]`:
 * runs both models in onnxruntime-node on the same inputs and reports how far the
 * converted model's outputs are from the original's and, when given, from
 * reference outputs (pass/fail against --tolerance).
 */
import { DeltacError } from '../../ir/errors.js';
import { readNpy } from '../../runtime/npy.js';
import { OrtModel, compareArrays, readInputFolder } from '../../runtime/onnxruntime.js';
import type { Command } from '../main.js';
import { table } from '../output.js';

export interface VerifyRow {
  inputSet: string;
  output: string;
  shape: number[];
  vsOriginal?: { maxAbs: number; rel: number; meanAbs: number };
  vsReference?: { maxAbs: number; rel: number; meanAbs: number; pass: boolean };
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'run original and converted models in onnxruntime and compare outputs',
  usage: 'deltac verify <original.onnx> <converted.onnx> --inputs <dir> [--reference out0.npy[,out1.npy…]] [--tolerance 1e-4] [--json]',
  options: {
    inputs: { type: 'string' },
    reference: { type: 'string' },
    tolerance: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const [original, converted] = positionals;
    const inputs = values.inputs as string | undefined;
    if (!original || !converted || !inputs) throw new DeltacError('DELTAC_E_BAD_OPTION', `Usage: ${this.usage}`);
    const tolerance = values.tolerance !== undefined ? Number(values.tolerance) : 1e-4;
    if (!(tolerance >= 0)) throw new DeltacError('DELTAC_E_BAD_OPTION', '--tolerance must be a non-negative number');
    const sets = readInputFolder(inputs);
    if (!sets.size) throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `no .npy inputs in "${inputs}"`);
    const references = typeof values.reference === 'string' ? values.reference.split(',').filter(Boolean) : [];
    if (references.length && references.length !== sets.size) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', `--reference names ${references.length} file(s) for ${sets.size} input set(s) (${[...sets.keys()].join(', ')})`);
    }
    const a = await OrtModel.load(original);
    const b = await OrtModel.load(converted);
    const rows: VerifyRow[] = [];
    try {
      let k = 0;
      for (const [key, feeds] of sets) {
        const outA = await a.run(feeds);
        const outB = await b.run(feeds);
        const ref = references[k] ? readNpy(references[k]!) : undefined;
        k++;
        for (const [name, out] of Object.entries(outB)) {
          const row: VerifyRow = { inputSet: key, output: name, shape: out.dims };
          const orig = outA[name];
          if (orig) row.vsOriginal = pick(compareArrays(out.data, orig.data));
          if (ref && name === b.outputNames[0]) {
            const c = compareArrays(out.data, Float32Array.from(ref.data as Float32Array));
            row.vsReference = { ...pick(c), pass: c.rel <= tolerance };
          }
          rows.push(row);
        }
      }
    } finally {
      await a.release();
      await b.release();
    }
    const failed = rows.filter((r) => r.vsReference && !r.vsReference.pass);
    if (values.json) io.out(JSON.stringify({ tolerance, rows, pass: failed.length === 0 }, null, 2));
    else {
      io.out(
        table(
          ['inputs', 'output', 'shape', 'max|Δ| vs original', 'rel', 'max|Δ| vs reference', 'rel', 'result'],
          rows.map((r) => [
            r.inputSet,
            r.output,
            `[${r.shape.join(',')}]`,
            r.vsOriginal ? r.vsOriginal.maxAbs.toExponential(2) : '-',
            r.vsOriginal ? r.vsOriginal.rel.toExponential(2) : '-',
            r.vsReference ? r.vsReference.maxAbs.toExponential(2) : '-',
            r.vsReference ? r.vsReference.rel.toExponential(2) : '-',
            r.vsReference ? (r.vsReference.pass ? 'ok' : `FAIL (> ${tolerance})`) : '-',
          ]),
        ),
      );
      io.out('rel = max|Δ| / max|expected|. The converted model is expected to differ from the original (attention vs ΔConvBlock); the reference decides.');
    }
    if (failed.length) {
      throw new DeltacError(
        'DELTAC_E_VERIFY_MISMATCH',
        `${failed.length} output(s) exceed the tolerance ${tolerance} against the reference (worst rel ${Math.max(...failed.map((f) => f.vsReference!.rel)).toExponential(2)})`,
      );
    }
  },
};

function pick(c: { maxAbs: number; rel: number; meanAbs: number }) {
  return { maxAbs: c.maxAbs, rel: c.rel, meanAbs: c.meanAbs };
}
