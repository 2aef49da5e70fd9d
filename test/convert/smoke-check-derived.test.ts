/**
 * The smoke check's inputs beyond the latent: a UNet's ControlNet residual inputs
 * (each level its own symbolic H/W), a ControlNet's conditioning image (`height*4`),
 * inpainting's 9 channels and IP-Adapter's image embeddings get dims the original
 * model accepts, derived by shape inference from where they are consumed; an input
 * whose dims nothing fixes still makes the check skip, and says which.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { saveModel } from '../../src/onnx/save.js';
import { type SmokeCheckResult, smokeCheck } from '../../src/runtime/smoke-check.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { type Layout, buildExport, deltaCheckpoint } from '../fixtures/exports/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-smoke-derived-');
afterAll(tmp.cleanup);

/** The layout's TorchScript export (symbolic batch/height/width) and its ΔConvFusion checkpoint, as files. */
function exportFiles(layout: Layout): { model: string; weights: string } {
  const built = buildExport({ layout, style: 'ts-sdpa' });
  const files = { model: path.join(tmp.dir, `${layout}.onnx`), weights: path.join(tmp.dir, `${layout}.safetensors`) };
  writeSafetensors(files.weights, deltaCheckpoint(built));
  saveModel(built.model, files.model);
  return files;
}

const dimsOf = (r: SmokeCheckResult) => r.inputs.map((i) => `${i.name} ${i.dims.join('×')}`);

describe('smoke check inputs derived from the graph', () => {
  it('UNet with ControlNet residual inputs (deltac convert --json --check full): each residual gets its level size, the check runs', async () => {
    const f = exportFiles('sd15-control');
    const r = await runCli('convert', f.model, '--weights', f.weights, '-o', path.join(tmp.dir, 'control.out.onnx'), '--json', '--check', 'full');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.check.layers.status).toBe('passed');
    const check = json.check.full;
    expect(check.status).toBe('passed');
    // level 0 (and its downsampler's input) at the latent's 32×32, the downsampled level and the mid block 16×16
    expect(dimsOf(check)).toEqual([
      'sample 1×4×32×32',
      'timestep 1',
      'encoder_hidden_states 1×8×24',
      'down_block_additional_residual_0 1×16×32×32',
      'down_block_additional_residual_1 1×16×32×32',
      'down_block_additional_residual_2 1×16×16×16',
      'down_block_additional_residual_3 1×32×16×16',
      'mid_block_additional_residual 1×32×16×16',
    ]);
    expect(check.outputs).toEqual([{ name: '/m/conv_out/Conv_output_0', dims: [1, 4, 32, 32], nonFinite: 0, originalNonFinite: 0 }]);
  });

  it.each([
    ['controlnet', 'controlnet_cond 1×3×128×128', [1, 32, 16, 16]],
    ['sd15-inpaint', 'sample 1×9×32×32', [1, 4, 32, 32]],
    ['sd15-ip-adapter', 'image_embeds 1×32', [1, 4, 32, 32]],
  ] as const)('%s: converted and checked on %s', async (layout, input, lastOutput) => {
    const f = exportFiles(layout);
    const built = buildExport({ layout, style: 'ts-sdpa' });
    convert(built.model, { weights: Checkpoint.open(f.weights) });
    const out = path.join(tmp.dir, `${layout}.out.onnx`);
    saveModel(built.model, out);
    const r = await smokeCheck(f.model, out, built.model);
    expect(r.status).toBe('passed');
    expect(dimsOf(r)).toContain(input);
    expect(r.outputs.at(-1)!.dims).toEqual(lastOutput);
    expect(r.outputs.every((o) => o.nonFinite === 0)).toBe(true);
  });

  /** x (the latent) → stride-2 Conv → + r, ‖ c; r and c have their own symbols. */
  function residualGraph(through: string): string {
    return `model {ir_version = 8, opset_import = {"" = 17}}
graph @main(%x: f32[batch,2,height,width], %r: f32[batch,2,hr,wr], %c: f32[batch,3,hc,wc]) -> (%y: f32[batch,5,?,?]) {
  @w: f32[2,2,3,3] = tensor<f32[2,2,3,3]> elided("sha256:00")
  @p: f32[2,2,1,1] = tensor<f32[2,2,1,1]> [1.0, 0.0, 0.0, 1.0]
  %d = Conv(%x, @w) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}
  ${through}
  %s = Add(%d, %rr)
  %y = Concat(%s, %c) {axis = 1}
}`;
  }

  async function checkGraph(name: string, text: string): Promise<SmokeCheckResult> {
    const model = parseModel(text);
    model.graph.initializers.get('w')!.initializer = Tensor.fromFloat32(new Float32Array(36).fill(0.1), [2, 2, 3, 3]);
    // No conversion here: the model is its own "converted" model, saved twice so that the check compares.
    const [original, converted] = [path.join(tmp.dir, `${name}.onnx`), path.join(tmp.dir, `${name}.out.onnx`)];
    saveModel(model, original);
    saveModel(model, converted);
    return smokeCheck(original, converted, model);
  }

  it('an Add and a Concat fix the dims of the inputs they read (through a Cast)', async () => {
    const r = await checkGraph('derived', residualGraph('%rr = Cast(%r) {to = 1}'));
    expect(r.status).toBe('passed');
    expect(dimsOf(r)).toEqual(['x 1×2×32×32', 'r 1×2×16×16', 'c 1×3×16×16']);
    expect(r.outputs.map((o) => o.dims)).toEqual([[1, 5, 16, 16]]);
  });

  it('an input behind a Conv cannot be derived: the sizes tried fail, the check is skipped and says which input', async () => {
    const r = await checkGraph('underived', residualGraph('%rr = Conv(%r, @p) {kernel_shape = [1, 1]}'));
    expect(r.status).toBe('skipped');
    expect(r.reason).toMatch(/^the original model does not run on the inputs tried \(32: .*; 64: .*; 16: .*\); the spatial dims of "r" could not be derived from the graph \(they were given the size tried\)$/);
  });
});
