/**
 * `--emit fused` writes a model every runtime runs: the ai.deltac.PyramidConvBlock nodes
 * stay (for runtimes with the generated kernels) and the model defines the op as local
 * functions, one per configuration, whose body is the standard lowering. onnxruntime-node
 * runs the file as it is: equal to the `--emit standard` model within 1e-6 and to PyTorch's
 * ΔConvFusion outputs (out*.delta.npy) within 1e-4. Load → save keeps the functions byte for
 * byte; the textual IR prints them and reads them back; shape inference goes through them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emitKernels } from '../../src/codegen/emit.js';
import { convert, createPassManager } from '../../src/convert.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { formatType } from '../../src/ir/types.js';
import { verifyModel } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, serializeModel } from '../../src/onnx/save.js';
import { configId, isPyramidConvBlock, pyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { readNpy } from '../../src/runtime/npy.js';
import { OrtModel, compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const CASES = [
  { name: 'sd15-mini', layers: 16, configs: ['c32_ci16_k9_s1_0p5_simple_f32', 'c64_ci32_k7_s1_0p5_simple_f32', 'c64_ci32_k5_s1_0p5_simple_f32'] },
  { name: 'pixart-mini', layers: 4, configs: ['c32_ci16_k5_s1_0p5_sigmoid_f32'] },
] as const;

const tmp = makeTempDir('deltac-fused-');
afterAll(tmp.cleanup);

describe.each(CASES)('$name --emit fused', (c) => {
  const dir = path.join(MODELS_DIR, c.name);
  const fused = loadModel(path.join(dir, 'model.onnx'));
  convert(fused, { weights: path.join(dir, 'delta.safetensors'), emit: 'fused' });
  const fusedFile = path.join(tmp.dir, `${c.name}.fused.onnx`);
  saveModel(fused, fusedFile);
  const standard = loadModel(path.join(dir, 'model.onnx'));
  convert(standard, { weights: path.join(dir, 'delta.safetensors') });
  const standardFile = path.join(tmp.dir, `${c.name}.standard.onnx`);
  saveModel(standard, standardFile);

  it('keeps one PyramidConvBlock per layer, each calling the function of its configuration (overload = kernel id)', () => {
    const blocks = fused.graph.nodes.filter(isPyramidConvBlock);
    expect(blocks).toHaveLength(c.layers);
    for (const b of blocks) {
      expect(b.overload).toBe(configId(pyramidConvConfig(b)));
      expect(fused.calledFunction(b)?.overload).toBe(b.overload);
    }
    expect(fused.functions.map((f) => f.label)).toEqual(c.configs.map((id) => `ai.deltac.PyramidConvBlock:${id}`));
    const f = fused.functions[0]!;
    expect(f.inputs.map((v) => v.name)).toEqual(['x', 'hw', 'conv_up.weight', 'conv_up.bias', 'gates.conv_spatial.weight', 'conv_out.weight', 'conv_out.bias', 'conv_pool.weight', 'conv_pool.bias']);
    expect(f.outputs.map((v) => v.name)).toEqual(['y']);
    expect(f.attributes.map((a) => a.name)).toEqual(['kernel_size', 'scales', 'gate', 'module_path']);
    expect(f.body.initializers.size).toBe(0);
    expect([...f.opsetImports]).toEqual([['', 17]]);
    expect(fused.irVersion).toBe(10); // overloads
    expect([...fused.opsetImports]).toEqual([['', 17], ['ai.deltac', 1]]);
    expect(verifyModel(fused).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('runs in onnxruntime-node as it is: equal to --emit standard within 1e-6, to PyTorch within 1e-4', async () => {
    const [ortFused, ortStandard] = await Promise.all([OrtModel.load(fusedFile), OrtModel.load(standardFile)]);
    try {
      for (const [key, feeds] of readInputFolder(dir)) {
        const y = Object.values(await ortFused.run(feeds))[0]!;
        const s = Object.values(await ortStandard.run(feeds))[0]!;
        const ref = readNpy(path.join(dir, `${key.replace('in', 'out')}.delta.npy`));
        expect(y.dims).toEqual(ref.shape);
        const vsStandard = compareArrays(y.data, s.data);
        expect(vsStandard.maxAbs, `${key} vs standard`).toBeLessThanOrEqual(1e-6);
        expect(compareArrays(y.data, ref.data as Float32Array).rel, `${key} vs PyTorch`).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await Promise.all([ortFused.release(), ortStandard.release()]);
    }
  });

  it('load → save keeps the functions (and the whole file) byte for byte', () => {
    const bytes = fs.readFileSync(fusedFile);
    const again = path.join(tmp.dir, `${c.name}.fused.again.onnx`);
    saveModel(loadModel(fusedFile), again);
    expect(fs.readFileSync(again).equals(bytes)).toBe(true);
  });

  it('infers the blocks\' outputs through their functions', () => {
    const loaded = loadModel(fusedFile);
    const env = runInference(loaded);
    for (const b of loaded.graph.nodes.filter(isPyramidConvBlock)) {
      const x = formatType(env.types.get(b.inputs[0]!) ?? null);
      expect(formatType(env.types.get(b.outputs[0]!) ?? null), b.name).toBe(x);
      expect(x).toMatch(/^f32\[[\w?]+,[^,?]+,\d+\]$/); // N known (height*width, or 48)
    }
    // the model's outputs are known as before the conversion
    expect(loaded.graph.outputs.map((o) => formatType(env.types.get(o) ?? null))).toEqual(standard.graph.outputs.map((o) => formatType(o.type)));
  });

  it('prints as textual IR with its functions and reads back to the same model', () => {
    const text = printModel(fused);
    expect(text.match(/^function \{domain = "ai\.deltac", overload = "/gm)).toHaveLength(c.configs.length);
    const back = parseModel(text);
    expect(printModel(back)).toBe(text);
    expect(back.functions.map((f) => f.label)).toEqual(fused.functions.map((f) => f.label));
  });

  it('lowers back to the standard model (the functions go with their last caller)', () => {
    const loaded = loadModel(fusedFile);
    createPassManager().run(loaded, ['lower-pyramid-conv', 'fold-constants', 'dce']);
    expect(loaded.functions).toEqual([]);
    expect(loaded.opset('ai.deltac')).toBeUndefined();
    expect(loaded.graph.nodes.filter(isPyramidConvBlock)).toEqual([]);
    expect(loaded.graph.nodes.length).toBe(standard.graph.nodes.length);
  });

  it('generates the kernels its nodes name, with the op contract in kernels.json and README.md', () => {
    const out = path.join(tmp.dir, `${c.name}.kernels`);
    const { manifest } = emitKernels(loadModel(fusedFile), out);
    expect(manifest.kernels.map((k) => k.id)).toEqual([...c.configs]);
    expect(manifest.op).toMatchObject({ domain: 'ai.deltac', op_type: 'PyramidConvBlock', opset: 1 });
    expect(manifest.op.inputs.map((i) => i.name)).toEqual(fused.functions[0]!.inputs.map((v) => v.name));
    expect(manifest.op.attributes).toEqual({ kernel_size: 'int', scales: 'floats', gate: 'string', module_path: 'string' });
    const readme = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    expect(readme).toContain('## The operator: `ai.deltac.PyramidConvBlock`');
    expect(readme).toContain('| 1 | `hw` | int64 [2] |');
    for (const id of c.configs) expect(readme).toContain(`| \`${id}\` |`);
    expect(fs.readFileSync(path.join(out, 'deltac_kernels.h'), 'utf8')).toContain('implement the ONNX operator ai.deltac.PyramidConvBlock (domain "ai.deltac"');
    // a README of the user's own stays
    fs.writeFileSync(path.join(out, 'README.md'), 'my notes\n');
    emitKernels(loadModel(fusedFile), out);
    expect(fs.readFileSync(path.join(out, 'README.md'), 'utf8')).toBe('my notes\n');
  });
});

describe('--emit fused: a node whose overload disagrees with its configuration', () => {
  it('is refused by the kernel generator', () => {
    const dir = path.join(MODELS_DIR, 'pixart-mini');
    const m = loadModel(path.join(dir, 'model.onnx'));
    convert(m, { weights: path.join(dir, 'delta.safetensors'), emit: 'fused' });
    m.graph.nodes.find(isPyramidConvBlock)!.overload = 'c32_ci16_k3_s1_0p5_sigmoid_f32';
    const file = path.join(tmp.dir, 'edited.onnx');
    fs.writeFileSync(file, serializeModel(m));
    expect(() => emitKernels(loadModel(file), path.join(tmp.dir, 'edited.kernels'))).toThrow(
      /has overload "c32_ci16_k3_s1_0p5_sigmoid_f32", but its weights and attributes make it "c32_ci16_k5_s1_0p5_sigmoid_f32"/,
    );
  });
});
