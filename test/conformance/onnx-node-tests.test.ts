/**
 * The ONNX backend node tests (onnx 1.23.1: 1,884 models, every operator of opsets 1–28,
 * IR versions up to 14) as deltac's conformance corpus. What deltac owes each model:
 * - it loads (a newer IR version or an unknown operator is a warning, never a refusal);
 * - shape inference of its outputs, with their declared types removed, is right or
 *   unknown, never a wrong number (checked against the real outputs in expected.json);
 * - load → save gives back the same protobuf message, field by field.
 * The archive is unpacked with the system `tar` into a temporary folder.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelWithReport } from '../../src/onnx/load.js';
import { serializeModel } from '../../src/onnx/save.js';
import { ModelProtoType } from '../../src/onnx/schema.js';
import { CONFORMANCE_DIR, listDir, makeTempDir } from '../helpers/paths.js';
import { type ExpectedOutput, type OutputCheck, type Verdict, checkOutputs } from './output-shapes.js';
import { firstDifference, protoObject } from './proto-compare.js';

const ARCHIVE = path.join(CONFORMANCE_DIR, 'onnx-node-tests.tar.gz');
const MODELS = 1884;
/**
 * Outputs inferred exactly, measured when this suite was written: a floor, so that a
 * rule change that loses coverage is noticed (raise it when coverage grows).
 */
const MIN_EXACT = 1676;

interface CaseResult {
  test: string;
  loadError?: string;
  warnings: string[];
  /** Where the saved message first differs from the file's, if it does. */
  roundTripDifference?: string;
  /** decode → encode with deltac's schema reproduces the file's bytes (the schema knows every field it uses). */
  schemaExact: boolean;
  outputs: OutputCheck[];
}

function runCase(root: string, test: string): CaseResult {
  const file = path.join(root, test, 'model.onnx');
  const bytes = fs.readFileSync(file);
  const expected = (JSON.parse(fs.readFileSync(path.join(root, test, 'expected.json'), 'utf8')) as { outputs: ExpectedOutput[] }).outputs;
  const schemaExact = Buffer.from(ModelProtoType.encode(ModelProtoType.decode(bytes)).finish()).equals(bytes);
  let loaded;
  try {
    loaded = loadModelWithReport(file);
  } catch (e) {
    return { test, loadError: (e as Error).toString(), warnings: [], schemaExact, outputs: [] };
  }
  const roundTripDifference = firstDifference(protoObject(bytes), protoObject(serializeModel(loaded.model)));
  return {
    test,
    warnings: loaded.diagnostics.map((d) => d.code),
    roundTripDifference,
    schemaExact,
    outputs: checkOutputs(test, loaded.model, expected),
  };
}

if (!fs.existsSync(ARCHIVE)) throw new Error(`the conformance corpus is missing: ${ARCHIVE} (set DELTAC_CONFORMANCE to its folder)`);
const tmp = makeTempDir('deltac-conformance-');
afterAll(tmp.cleanup);

describe('ONNX backend node tests (onnx 1.23.1)', () => {
  execFileSync('tar', ['-xzf', ARCHIVE, '-C', tmp.dir]);
  const root = path.join(tmp.dir, 'onnx-node-tests');
  const tests = listDir(root).filter((t) => fs.existsSync(path.join(root, t, 'model.onnx')));
  const started = performance.now();
  const results = tests.map((t) => runCase(root, t));
  const elapsed = performance.now() - started;
  const outputs = results.flatMap((r) => r.outputs);
  const count = (v: Verdict) => outputs.filter((o) => o.verdict === v).length;
  const byName = new Map(results.map((r) => [r.test, r]));

  it(`has all ${MODELS} models`, () => {
    expect(tests).toHaveLength(MODELS);
  });

  it('loads every model', () => {
    expect(results.filter((r) => r.loadError).map((r) => `${r.test}: ${r.loadError}`)).toEqual([]);
  });

  it('infers no wrong output shape or element type (right or unknown)', () => {
    const wrong = outputs.filter((o) => o.verdict === 'wrong').map((o) => `${o.test}/${o.output}: inferred ${o.inferred}, real ${o.expected}`);
    expect(wrong).toEqual([]);
  });

  it('infers at least the measured number of output shapes exactly (coverage)', () => {
    const exact = count('exact');
    console.log(
      `conformance: ${results.filter((r) => !r.loadError).length}/${tests.length} load, ` +
        `${exact}/${outputs.length} tensor outputs inferred exactly (${((100 * exact) / outputs.length).toFixed(1)}%), ` +
        `${count('unknown')} unknown, ${count('wrong')} wrong; ` +
        `${results.filter((r) => !r.loadError && !r.roundTripDifference).length}/${tests.length} round-trip identical; ` +
        `${Math.round(elapsed)} ms`,
    );
    expect(outputs.length).toBe(2017);
    expect(exact).toBeGreaterThanOrEqual(MIN_EXACT);
  });

  it('saves every model back as the same message, field by field', () => {
    const changed = results.filter((r) => r.roundTripDifference).map((r) => `${r.test}: ${r.roundTripDifference}`);
    expect(changed).toEqual([]);
  });

  it("knows every field the corpus uses (decode → encode with deltac's schema gives the file's bytes)", () => {
    expect(results.filter((r) => !r.schemaExact).map((r) => r.test)).toEqual([]);
  });

  it('loads IR 13 and 14 (opset 28) without a warning', () => {
    const ir14 = byName.get('test_bitshift_left_int16')!;
    expect(ir14.loadError).toBeUndefined();
    expect(ir14.warnings).toEqual([]);
    expect(results.filter((r) => r.warnings.includes('DELTAC_W_IR_VERSION'))).toEqual([]);
  });

  it('infers the cases that used to be refused: Split with sizes, ceil_mode pooling', () => {
    const of = (test: string) => byName.get(test)!.outputs.map((o) => o.inferred);
    expect(of('test_split_1d_uneven_split_opset18')).toEqual(['f32[2]', 'f32[2]', 'f32[2]', 'f32[1]']);
    expect(of('test_split_2d_uneven_split_opset18')).toEqual(['f32[2,3]', 'f32[2,3]', 'f32[2,2]']);
    // sizes in a graph input: known rank, unknown split dim (never the equal parts)
    expect(of('test_split_variable_parts_1d_opset13')).toEqual(['f32[?]', 'f32[?]']);
    expect(of('test_split_variable_parts_2d_opset18')).toEqual(['f32[2,?]', 'f32[2,?]']);
    expect(of('test_averagepool_2d_ceil_last_window_starts_on_pad')).toEqual(['f32[1,3,1,1]']);
    expect(of('test_maxpool_2d_ceil_output_size_reduce_by_one')).toEqual(['f32[1,1,1,1]']);
    expect(of('test_maxpool_2d_ceil')).toEqual(['f32[1,1,2,2]']);
  });

  it('infers the outputs whose shapes the spec fixes: Attention caches, empty axes, Scan and Loop bodies, opset 27 ops', () => {
    const of = (test: string) => byName.get(test)!.outputs.map((o) => o.inferred);
    expect(of('test_attention_4d_with_past_and_present_qk_matmul')).toEqual(['f32[2,3,4,8]', 'f32[2,3,18,8]', 'f32[2,3,18,8]', 'f32[2,3,4,18]']);
    expect(of('test_attention_3d_gqa_with_past_and_present')).toEqual(['f32[2,4,72]', 'f32[2,3,18,8]', 'f32[2,3,18,8]']);
    expect(of('test_reduce_sum_default_axes_keepdims_example')).toEqual(['f32[1,1,1]']); // axes input of shape [0]
    expect(of('test_scan9_sum')).toEqual(['f32[2]', 'f32[3,2]']);
    // the trip count is a graph input: the loop-carried value is known, the iteration count is not
    expect(of('test_loop11')).toEqual(['f32[1]', 'f32[?,1]']);
    expect(of('test_linear_attention_gated_delta_mqa_expanded')).toEqual(['f32[2,4,64]', 'f32[2,1,8,8]']); // through a Scan body
    expect(of('test_causal_conv_with_state_kernel_size_one')).toEqual(['f32[2,4,8]', 'f32[2,4,0]']);
  });

  it('keeps an unknown unnamed dim (`dim {}`) unknown through load → save', () => {
    const file = path.join(root, 'test_string_split_empty_tensor', 'model.onnx');
    // output `substrings` is declared [0, ?]: a dim_value 0 and a `dim {}`
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const dims = (bytes: Uint8Array) => (protoObject(bytes) as any).graph.output[0].type.tensorType.shape.dim;
    const saved = serializeModel(loadModelWithReport(file).model);
    expect(dims(fs.readFileSync(file))).toEqual([{ dimValue: '0' }, {}]);
    expect(dims(saved)).toEqual([{ dimValue: '0' }, {}]);
  });

  it('stays fast', () => {
    expect(elapsed).toBeLessThan(30_000);
  });
});
