/**
 * Lists the conformance outputs that shape inference leaves unknown (or gets wrong), grouped by
 * the operator that produces them, biggest group first: where the next shape rule pays most.
 *   npx tsx test/conformance/coverage-by-op.ts       (counts per operator)
 *   npx tsx test/conformance/coverage-by-op.ts -v    (and every output: inferred vs real)
 * Same comparison as onnx-node-tests.test.ts: declared output types removed, exact = every dim known and right.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DataType } from '../../src/ir/dtype.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { type ValueType, formatType } from '../../src/ir/types.js';
import { loadModelWithReport } from '../../src/onnx/load.js';
import { CONFORMANCE_DIR, listDir, makeTempDir } from '../helpers/paths.js';

const NUMPY_DTYPES: Record<string, DataType> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, float16: DataType.FLOAT16, bfloat16: DataType.BFLOAT16,
  int8: DataType.INT8, int16: DataType.INT16, int32: DataType.INT32, int64: DataType.INT64,
  uint8: DataType.UINT8, uint16: DataType.UINT16, uint32: DataType.UINT32, uint64: DataType.UINT64,
  bool: DataType.BOOL, object: DataType.STRING,
};

function verdict(t: ValueType | null, shape: number[], dtype: string): 'exact' | 'unknown' | 'wrong' {
  if (!t || t.kind !== 'tensor') return 'unknown';
  const want = NUMPY_DTYPES[dtype];
  if (want !== undefined && t.dtype !== DataType.UNDEFINED && t.dtype !== want) return 'wrong';
  if (!t.shape) return 'unknown';
  if (t.shape.length !== shape.length || t.shape.some((d, i) => typeof d === 'number' && d !== shape[i])) return 'wrong';
  return t.shape.every((d) => typeof d === 'number') ? 'exact' : 'unknown';
}

const tmp = makeTempDir('deltac-coverage-');
try {
  execFileSync('tar', ['-xzf', path.join(CONFORMANCE_DIR, 'onnx-node-tests.tar.gz'), '-C', tmp.dir]);
  const root = path.join(tmp.dir, 'onnx-node-tests');
  const groups = new Map<string, string[]>();
  const counts = { exact: 0, unknown: 0, wrong: 0 };
  for (const test of listDir(root)) {
    const file = path.join(root, test, 'model.onnx');
    if (!fs.existsSync(file)) continue;
    const expected = (JSON.parse(fs.readFileSync(path.join(root, test, 'expected.json'), 'utf8')) as {
      outputs: { name: string; shape: number[] | null; dtype: string }[];
    }).outputs;
    const model = loadModelWithReport(file).model;
    const outputs = model.graph.outputs;
    for (const v of outputs) {
      if (!v.producer) continue;
      v.type = null;
      v.typeSource = 'inferred';
    }
    const { types } = runInference(model);
    expected.forEach((e, i) => {
      if (e.shape === null) return;
      const v = outputs[i];
      const inferred = v ? (types.get(v) ?? v.type) : null;
      const result = verdict(inferred, e.shape, e.dtype);
      counts[result]++;
      if (result === 'exact') return;
      const op = v?.producer ? `${v.producer.domain ? `${v.producer.domain}:` : ''}${v.producer.opType}` : '(graph input)';
      const lines = groups.get(op) ?? [];
      lines.push(`${result} ${test}/${e.name}: inferred ${formatType(inferred)}, real ${e.dtype}[${e.shape.join(',')}]`);
      groups.set(op, lines);
    });
  }
  console.log(`exact ${counts.exact}, unknown ${counts.unknown}, wrong ${counts.wrong}`);
  for (const [op, lines] of [...groups].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))) {
    console.log(`${String(lines.length).padStart(4)}  ${op}`);
    if (process.argv.includes('-v')) for (const l of lines) console.log(`        ${l}`);
  }
} finally {
  tmp.cleanup();
}
