/**
 * The output-shape check of the conformance corpus, shared by the suite
 * (onnx-node-tests.test.ts) and the coverage script (coverage-by-op.ts): declared output
 * types removed, inferred again, compared with the real shapes in expected.json —
 * exact (every dim known and right), unknown, or wrong.
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { type ValueType, formatType } from '../../src/ir/types.js';

/** numpy dtype names in expected.json → ONNX element types ('TensorProto' and 'list' have no shape there). */
const NUMPY_DTYPES: Record<string, DataType> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  bfloat16: DataType.BFLOAT16,
  int8: DataType.INT8,
  int16: DataType.INT16,
  int32: DataType.INT32,
  int64: DataType.INT64,
  uint8: DataType.UINT8,
  uint16: DataType.UINT16,
  uint32: DataType.UINT32,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
  object: DataType.STRING,
};

export interface ExpectedOutput {
  name: string;
  shape: number[] | null;
  dtype: string;
}

export type Verdict = 'exact' | 'unknown' | 'wrong';

export interface OutputCheck {
  test: string;
  output: string;
  /** The operator that produces the output (`domain:op`), or '(graph input)'. */
  op: string;
  expected: string;
  inferred: string;
  verdict: Verdict;
}

export function verdict(inferred: ValueType | null, expected: ExpectedOutput): Verdict {
  if (!inferred || inferred.kind !== 'tensor') return 'unknown';
  const dtype = NUMPY_DTYPES[expected.dtype];
  if (dtype !== undefined && inferred.dtype !== DataType.UNDEFINED && inferred.dtype !== dtype) return 'wrong';
  if (!inferred.shape) return 'unknown';
  const want = expected.shape!;
  if (inferred.shape.length !== want.length) return 'wrong';
  if (inferred.shape.some((d, i) => typeof d === 'number' && d !== want[i])) return 'wrong';
  return inferred.shape.every((d) => typeof d === 'number') ? 'exact' : 'unknown';
}

/** Infers the graph outputs with their declared types removed (outputs that are graph inputs keep theirs). */
export function checkOutputs(test: string, model: Model, expected: ExpectedOutput[]): OutputCheck[] {
  const outputs = model.graph.outputs;
  for (const v of outputs) {
    if (!v.producer) continue;
    v.type = null;
    v.typeSource = 'inferred';
  }
  const { types } = runInference(model);
  return expected.flatMap((e, i): OutputCheck[] => {
    if (e.shape === null) return []; // not a tensor (sequence, optional, or an element type numpy lacks)
    const v = outputs[i];
    const inferred = v ? (types.get(v) ?? v.type) : null;
    const op = v?.producer ? `${v.producer.domain ? `${v.producer.domain}:` : ''}${v.producer.opType}` : '(graph input)';
    return [{ test, output: e.name, op, expected: `${e.dtype}[${e.shape.join(',')}]`, inferred: formatType(inferred), verdict: verdict(inferred, e) }];
  });
}
