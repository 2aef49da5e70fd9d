/**
 * The whole-model run after conversion (`--check full`), in the CLI table; a rewrite
 * that breaks the model (it does not run, or it renders NaN) is DELTAC_E_CHECK_FAILED
 * and the output is deleted or kept as *.failed.onnx; models onnxruntime's CPU
 * provider cannot run are skipped with the reason. (The default per-layer check:
 * test/runtime/layer-check*.test.ts.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { checkSavedModel, failedPath } from '../../src/runtime/conversion-check.js';
import { memoryReason, smokeCheck } from '../../src/runtime/smoke-check.js';
import { expectRejection, runCli } from '../helpers/cli.js';
import { MODELS_DIR, listDir, makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-smoke-');
afterAll(tmp.cleanup);

const fixture = (name: string, file = 'model.onnx') => path.join(MODELS_DIR, name, file);
const CHECK_LINE = /^check {12}(.*)$/m;
const FULL_LINE = /^check \(full\) {5}(.*)$/m;

describe('deltac convert --check full runs the whole model once', () => {
  it('pixart-mini: static 16×12 latent kept, text states 8 tokens, outputs finite', async () => {
    const r = await runCli('convert', fixture('pixart-mini'), '--weights', fixture('pixart-mini', 'delta.safetensors'), '-o', path.join(tmp.dir, 'pixart.onnx'), '--check', 'full');
    expect(r.code).toBe(0);
    expect(CHECK_LINE.exec(r.out)?.[1]).toMatch(/^passed in \d+\.\d s: 4 layers cut from the saved model/);
    expect(FULL_LINE.exec(r.out)?.[1]).toMatch(
      /^passed in \d+\.\d s: onnxruntime CPU ran the original and the converted model on hidden_states 1×4×16×12, encoder_hidden_states 1×8×48, timestep 1; outputs finite$/,
    );
  });

  it('sd15-mini: symbolic height/width bound to 32×32 (lowest level 4×4)', async () => {
    const r = await runCli('convert', fixture('sd15-mini'), '--weights', fixture('sd15-mini', 'delta.safetensors'), '-o', path.join(tmp.dir, 'sd15.onnx'), '--json', '--check', 'full');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.check).toMatchObject({ mode: 'full', status: 'passed', layers: { status: 'passed' } });
    const check = json.check.full;
    expect(check.status).toBe('passed');
    expect(check.inputs).toEqual([
      { name: 'sample', dtype: 'f32', dims: [1, 4, 32, 32] },
      { name: 'timestep', dtype: 'f32', dims: [1] },
      { name: 'encoder_hidden_states', dtype: 'f32', dims: [1, 8, 48] },
    ]);
    expect(check.outputs).toEqual([{ name: 'out_sample', dims: [1, 4, 32, 32], nonFinite: 0, originalNonFinite: 0 }]);
    expect(check.ms).toBeGreaterThan(0);
  });

  it('sd15-full ships no weights: the check says so instead of running', async () => {
    const model = loadModel(fixture('sd15-full', 'model.graph.onnx'), { missingExternalData: 'warn' });
    const file = fixture('sd15-full', 'model.graph.onnx');
    const r = await smokeCheck(file, file, model);
    expect(r.status).toBe('skipped');
    expect(r.reason).toBe('the model\'s weights are missing (384 external-data files, e.g. "m.conv_in.weight")');
  });

  it('pixart-mini converted over itself (--force): the converted model alone runs, its outputs finite', async () => {
    const input = path.join(tmp.dir, 'self.onnx');
    fs.copyFileSync(fixture('pixart-mini'), input);
    const r = await runCli('convert', input, '--weights', fixture('pixart-mini', 'delta.safetensors'), '-o', input, '--force', '--check', 'full');
    expect(r.code).toBe(0);
    // the original's structure was taken before it was overwritten: the nodes outside the layers are still compared
    expect(CHECK_LINE.exec(r.out)?.[1]).toMatch(/; 794 nodes outside the layers as in the original$/);
    expect(FULL_LINE.exec(r.out)?.[1]).toMatch(
      /^passed in \d+\.\d s: onnxruntime CPU ran the converted model \(it replaced the original, so its outputs had to be finite\) on hidden_states 1×4×16×12, encoder_hidden_states 1×8×48, timestep 1; outputs finite$/,
    );
  });

  it('--no-check, --emit fused, and the weights-fit-in-memory rule', async () => {
    const base = ['convert', fixture('pixart-mini'), '--weights', fixture('pixart-mini', 'delta.safetensors')];
    const off = await runCli(...base, '-o', path.join(tmp.dir, 'off.onnx'), '--no-check');
    expect(CHECK_LINE.exec(off.out)?.[1]).toBe('skipped: --no-check');
    expect(FULL_LINE.exec(off.out)).toBeNull();
    // --emit fused defines the op as local functions: onnxruntime runs the model as it is
    const fused = await runCli(...base, '-o', path.join(tmp.dir, 'fused.onnx'), '--emit', 'fused', '--check', 'full');
    expect(fused.code).toBe(0);
    expect(fused.out).toMatch(/^graph +1090 → \d+ nodes \(fused ai\.deltac\.PyramidConvBlock kept, defined by 1 local function \(one per configuration\)\)$/m);
    expect(FULL_LINE.exec(fused.out)?.[1]).toMatch(/^passed in \d+\.\d s: onnxruntime CPU ran the original and the converted model on hidden_states 1×4×16×12, .*; outputs finite$/);
    // without them (a fused model of an older deltac), only a runtime with the kernels runs it
    const bare = loadModel(path.join(tmp.dir, 'fused.onnx'));
    bare.functions = [];
    saveModel(bare, path.join(tmp.dir, 'bare.onnx'));
    const skipped = await smokeCheck(fixture('pixart-mini'), path.join(tmp.dir, 'bare.onnx'), bare);
    expect(skipped.status).toBe('skipped');
    expect(skipped.reason).toMatch(/^ai\.deltac PyramidConvBlock has no CPU kernel and the model does not define it as a function/);
    expect((await runCli(...base, '-o', path.join(tmp.dir, 'x.onnx'), '--check', 'full', '--no-check')).err).toMatch(/DELTAC_E_BAD_OPTION: --check and --no-check/);
    expect((await runCli(...base, '-o', path.join(tmp.dir, 'x.onnx'), '--check', 'everything')).err).toMatch(/DELTAC_E_BAD_OPTION: --check must be layers or full, got "everything"/);
    const model = loadModel(fixture('pixart-mini'));
    expect(memoryReason(model, 2 ** 40)).toBeNull();
    expect(memoryReason(model, 2 ** 10)).toMatch(/^the weights \(0\.0 GiB\) need about 0\.0 GiB of memory and 0\.0 GiB is available$/);
    // --check full refuses the whole-model run when it would not fit; the layers are still checked
    const dir = path.join(tmp.dir, 'tight');
    fs.mkdirSync(dir);
    const converted = loadModel(fixture('pixart-mini'));
    convert(converted, { weights: fixture('pixart-mini', 'delta.safetensors') });
    const saved = saveModel(converted, path.join(dir, 'pixart.onnx'));
    const tight = await checkSavedModel(fixture('pixart-mini'), saved, { check: 'full', availableMemory: 2 ** 10, weights: fixture('pixart-mini', 'delta.safetensors') });
    expect(tight.layers?.layers).toHaveLength(4);
    expect(tight.full).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/is available; the per-layer check needs only the ΔConvBlock weights$/) });
  });

  it('symbolic dims: a shared height symbol, text tokens, a hidden size read from the MatMul weight', async () => {
    const model = parseModel(`model {ir_version = 8, opset_import = {"" = 17}}
graph @main(%states: f32[batch,seq,dim], %x: f32[batch,2,height,width], %h: f32[batch,height]) -> (%y: f32[batch,seq,3], %z: f32[batch,2,height,width]) {
  @w: f32[24,3] = tensor<f32[24,3]> elided("sha256:00")
  @two: f32[] = tensor<f32[]> [2.0]
  %y = MatMul(%states, @w)
  %z = Mul(%x, @two)
}`);
    model.graph.initializers.get('w')!.initializer = Tensor.fromFloat32(new Float32Array(72).fill(0.5), [24, 3]);
    const file = path.join(tmp.dir, 'dims.onnx');
    saveModel(model, file);
    const r = await smokeCheck(file, file, model);
    expect(r.status).toBe('passed');
    expect(r.inputs.map((i) => `${i.name} ${i.dims.join('×')}`)).toEqual(['states 1×8×24', 'x 1×2×32×32', 'h 1×32']);
    expect(r.outputs.map((o) => `${o.name} ${o.dims.join('×')}`)).toEqual(['y 1×8×3', 'z 1×2×32×32']);
  });

  it('an onnxruntime-optimized CUDA graph is skipped with the operator that has no CPU kernel', async () => {
    const model = parseModel(`model {ir_version = 8, opset_import = {"" = 17, "com.microsoft" = 1}}
graph @main(%x: f32[batch,8,8,4]) -> (%y: f32[batch,8,8,4]) {
  @w: f32[4,4,1,1] = tensor<f32[4,4,1,1]> [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
  %y = com.microsoft.NhwcConv(%x, @w) {kernel_shape = [1, 1]}
}`);
    const file = path.join(tmp.dir, 'nhwc.onnx');
    saveModel(model, file);
    const r = await smokeCheck(file, file, model);
    expect(r).toMatchObject({ status: 'skipped', reason: 'com.microsoft NhwcConv has no CPU kernel' });
  });
});

/** Converts pixart-mini in memory; `inject` then breaks it the way a faulty rewrite would. */
function convertedPixart(inject: (model: Model) => void): Model {
  const model = loadModel(fixture('pixart-mini'));
  convert(model, { weights: fixture('pixart-mini', 'delta.safetensors') });
  inject(model);
  model.graph.topologicalSort();
  return model;
}

/** A Reshape of a converted layer gets a target shape of the wrong size (one dim off by one). */
function wrongReshape(model: Model): void {
  const reshape = model.graph.nodes.find((n) => n.opType === 'Reshape' && n.name.includes('attn1') && n.inputs[1]?.initializer?.dtype === DataType.INT64);
  expect(reshape, 'a Reshape in a converted layer').toBeDefined();
  const dims = reshape!.inputs[1]!.initializer!.toNumbers();
  const last = dims.length - 1;
  dims[last] = dims[last]! > 0 ? dims[last]! + 1 : 7;
  reshape!.setInput(1, model.graph.addInitializer('broken_shape', Tensor.fromInt64(dims)));
}

/** The first float output inside a converted layer goes through Sqrt(-Exp(y)): NaN everywhere downstream. */
function nanRewrite(model: Model): void {
  const g = model.graph;
  const node = g.nodes.find((n) => n.name.includes('attn1') && n.opType === 'MatMul');
  expect(node, 'a MatMul in a converted layer').toBeDefined();
  const y = node!.outputs[0]!;
  const readers = [...y.uses];
  const nan = g.op('Sqrt', [g.op('Neg', [g.op('Exp', [y], { name: 'inject/exp' })], { name: 'inject/neg' })], { name: 'inject/sqrt' });
  const sum = g.op('Add', [y, nan], { name: 'inject/add' });
  for (const u of readers) u.node.setInput(u.index, sum);
}

const expectCheckFailed = (p: Promise<unknown>): Promise<DeltacError> => expectRejection(p, 'DELTAC_E_CHECK_FAILED');

describe('a broken rewrite fails the whole-model run', () => {
  it('a reshape constant of the wrong length: the model does not load or run', async () => {
    const model = convertedPixart(wrongReshape);
    const saved = saveModel(model, path.join(tmp.dir, 'reshape.onnx'));
    const e = await expectCheckFailed(smokeCheck(fixture('pixart-mini'), saved.modelPath, model));
    expect(e.message).toMatch(/^the converted model does not (load|run) in onnxruntime.*[Rr]eshape/);
  });

  it('a rewrite that produces NaN: named output, count and first index', async () => {
    const model = convertedPixart(nanRewrite);
    const saved = saveModel(model, path.join(tmp.dir, 'nan.onnx'));
    const e = await expectCheckFailed(smokeCheck(fixture('pixart-mini'), saved.modelPath, model));
    // out is [1, 8, 16, 12] for the 1×4×16×12 latent: every element NaN
    expect(e.message).toBe(
      `the converted model gives 1536 NaN in output "out" (of 1536, the first at [0, 0, 0, 0]) where the original model's output is finite, on hidden_states 1×4×16×12, encoder_hidden_states 1×8×48, timestep 1`,
    );
  });

  it('a conversion written over its original (--force): nothing to compare with, so NaN anywhere fails', async () => {
    const model = convertedPixart(nanRewrite);
    const saved = saveModel(model, path.join(tmp.dir, 'in-place.onnx'));
    const e = await expectCheckFailed(smokeCheck(saved.modelPath, saved.modelPath, model));
    expect(e.message).toMatch(
      /^the converted model gives 1536 NaN in output "out" \(of 1536, the first at \[0, 0, 0, 0\]\) and replaced the original model \(--force\), so there is none to compare with, on hidden_states 1×4×16×12, /,
    );
  });
});

describe('a failed check deletes the output, or keeps it on request', () => {
  const weights = fixture('pixart-mini', 'delta.safetensors');

  it('deleted, with its external data; the message names the layer', async () => {
    const dir = path.join(tmp.dir, 'reshape');
    fs.mkdirSync(dir);
    const saved = saveModel(convertedPixart(wrongReshape), path.join(dir, 'pixart.onnx'), { externalData: true });
    expect(listDir(dir)).toEqual(['pixart.onnx', 'pixart.onnx.data']);
    const e = await expectCheckFailed(checkSavedModel(fixture('pixart-mini'), saved, { weights }));
    expect(e.message).toMatch(/^layer check: layer transformer_blocks\.0\.attn1: onnxruntime cannot run its region on tokens 2×8×6 \(batch×H×W\): .*[Rr]eshape/);
    expect(e.message).toMatch(/; the output was deleted \(--keep-failed keeps it as pixart\.failed\.onnx\)$/);
    expect(e.details).toMatchObject({ layer: 'transformer_blocks.0.attn1', stage: 'run', kept: false });
    expect(listDir(dir)).toEqual([]);
  });

  it('kept as *.failed.onnx on request, with --check full as well', async () => {
    const dir = path.join(tmp.dir, 'nan');
    fs.mkdirSync(dir);
    const saved = saveModel(convertedPixart(nanRewrite), path.join(dir, 'pixart.onnx'));
    const e = await expectCheckFailed(checkSavedModel(fixture('pixart-mini'), saved, { weights, keepFailed: true, check: 'full' }));
    expect(e.message).toMatch(/^layer check: layer transformer_blocks\.0\.attn1: gives 3072 NaN\/Inf of 3072 outputs on tokens 2×8×6 .*; the output was kept as .*pixart\.failed\.onnx$/);
    expect(listDir(dir)).toEqual(['pixart.failed.onnx']);
    expect(failedPath(saved.modelPath)).toBe(path.join(dir, 'pixart.failed.onnx'));
  });

  it('--keep-failed never replaces the input model: an input named pixart.failed.onnx stays as it was', async () => {
    const dir = path.join(tmp.dir, 'keep-input');
    fs.mkdirSync(dir);
    const input = path.join(dir, 'pixart.failed.onnx');
    fs.copyFileSync(fixture('pixart-mini'), input);
    const before = fs.readFileSync(input);
    const saved = saveModel(convertedPixart(nanRewrite), path.join(dir, 'pixart.onnx'));
    const e = await expectCheckFailed(checkSavedModel(input, saved, { keepFailed: true, weights: fixture('pixart-mini', 'delta.safetensors') }));
    expect(e.message).toMatch(/; the output was deleted \(--keep-failed would have replaced the input model pixart\.failed\.onnx\)$/);
    expect(e.details).toMatchObject({ kept: false });
    expect(fs.readFileSync(input).equals(before)).toBe(true);
    expect(listDir(dir)).toEqual(['pixart.failed.onnx']);
  });
});
