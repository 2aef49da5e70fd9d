/**
 * Loading never fails because shape inference disagrees with the file: a declared type
 * inference contradicts is a DELTAC_W_TYPE_CONFLICT warning, the declared type is kept,
 * and `deltac inspect` shows the warning (and lists it in --json). Real graph errors
 * still refuse the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelSummary } from '../../src/cli/commands/inspect.js';
import { formatType } from '../../src/ir/types.js';
import { decodeModel, loadModelWithReport } from '../../src/onnx/load.js';
import { serializeModel } from '../../src/onnx/save.js';
import { codeOf, runCli } from '../helpers/cli.js';
import { FLOAT, INT64, encodeModel, modelProto, valueInfo } from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-load-warnings-');
afterAll(tmp.cleanup);

/** x: f32[2,6] split into two outputs whose declared types disagree with equal halves. */
const splitWithWrongRule = () =>
  encodeModel(
    modelProto({
      opset: 13,
      inputs: [valueInfo('x', FLOAT, [2, 6])],
      initializers: [{ name: 'sizes', dataType: INT64, dims: [2], int64Data: [2, 4] }],
      nodes: [{ opType: 'Split', input: ['x', 'sizes'], output: ['a', 'b'], name: 'split', attribute: [{ name: 'axis', type: 2, i: 1 }] }],
      outputs: [valueInfo('a', FLOAT, [2, 2]), valueInfo('b', FLOAT, [2, 4])],
    }),
  );

/** y = Relu(x) declared with a shape Relu cannot produce. */
const declaredWrong = () =>
  encodeModel(
    modelProto({
      inputs: [valueInfo('x', FLOAT, [2, 3])],
      nodes: [{ opType: 'Relu', input: ['x'], output: ['y'], name: 'relu' }],
      outputs: [valueInfo('y', FLOAT, [3, 2])],
    }),
  );

describe('declared types that shape inference disagrees with', () => {
  it('Split by sizes agrees with the declared outputs: no warning', () => {
    const { model, diagnostics } = decodeModel(splitWithWrongRule(), tmp.dir);
    expect(diagnostics).toEqual([]);
    expect(model.graph.outputs.map((v) => formatType(v.type))).toEqual(['f32[2,2]', 'f32[2,4]']);
  });

  it('load with a DELTAC_W_TYPE_CONFLICT warning; the declared type wins and is saved back', () => {
    const { model, diagnostics } = decodeModel(declaredWrong(), tmp.dir, {}, 'm.onnx');
    expect(diagnostics.map((d) => [d.severity, d.code, d.where])).toEqual([['warning', 'DELTAC_W_TYPE_CONFLICT', 'y']]);
    expect(diagnostics[0]!.message).toBe('"y" is declared f32[3,2] but Relu "relu" produces f32[2,3] (dim 0 differs)');
    expect(formatType(model.graph.outputs[0]!.type)).toBe('f32[3,2]');
    const again = decodeModel(serializeModel(model), tmp.dir).model;
    expect(formatType(again.graph.outputs[0]!.type)).toBe('f32[3,2]');
  });

  it('`deltac inspect` shows the warning, and --json lists it', async () => {
    const file = path.join(tmp.dir, 'conflict.onnx');
    fs.writeFileSync(file, declaredWrong());
    const text = await runCli('inspect', file);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^warnings\s+1$/m);
    expect(text.out).toContain('DELTAC_W_TYPE_CONFLICT: "y" is declared f32[3,2] but Relu "relu" produces f32[2,3]');
    const json = await runCli('inspect', file, '--json');
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.out) as ModelSummary;
    expect(summary.warnings).toEqual([
      { code: 'DELTAC_W_TYPE_CONFLICT', message: '"y" is declared f32[3,2] but Relu "relu" produces f32[2,3] (dim 0 differs)', where: 'y' },
    ]);
    expect(summary.outputs).toEqual([{ name: 'y', type: 'f32[3,2]' }]);
  });

  it('`deltac inspect` of a model with a newer IR version: loads, warns DELTAC_W_IR_VERSION', async () => {
    const file = path.join(tmp.dir, 'ir15.onnx');
    fs.writeFileSync(file, encodeModel(modelProto({ irVersion: 15, opset: 28, inputs: [valueInfo('x', FLOAT, [2])], nodes: [{ opType: 'Relu', input: ['x'], output: ['y'] }], outputs: [valueInfo('y', FLOAT, [2])] })));
    const r = await runCli('inspect', file, '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out) as ModelSummary;
    expect(summary.irVersion).toBe(15);
    expect(summary.opsets).toEqual({ 'ai.onnx': 28 });
    expect(summary.warnings.map((w) => w.code)).toEqual(['DELTAC_W_IR_VERSION']);
    expect(summary.warnings[0]!.message).toContain('declares IR version 15, newer than the 14 deltac knows');
  });

  it('a model without problems has no warnings in --json', async () => {
    const file = path.join(tmp.dir, 'fine.onnx');
    fs.writeFileSync(file, splitWithWrongRule());
    const summary = JSON.parse((await runCli('inspect', file, '--json')).out) as ModelSummary;
    expect(summary.warnings).toEqual([]);
    expect(loadModelWithReport(file).diagnostics).toEqual([]);
  });

  it('real graph errors still refuse the file', () => {
    const bytes = encodeModel(
      modelProto({
        inputs: [valueInfo('x', FLOAT, [2])],
        nodes: [{ opType: 'Relu', input: ['nowhere'], output: ['y'], name: 'relu' }],
        outputs: [valueInfo('y', FLOAT, [2])],
      }),
    );
    expect(codeOf(() => decodeModel(bytes, tmp.dir))).toMatch(/^DELTAC_E_UNDEFINED_VALUE: Relu node "relu" reads "nowhere"/);
  });
});
