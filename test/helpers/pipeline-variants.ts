/**
 * Variants of the shared tiny pipelines for the pipeline tests, made with deltac's own
 * IR API: a copy of a folder, then a UNet whose timestep is float32/float16 (the graph
 * casts it to float itself, so the image must not change), a UNet with float16 inputs
 * and output (Casts around the float32 graph), or another tokenizer form.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType } from '../../src/ir/dtype.js';
import type { Graph } from '../../src/ir/graph.js';
import { tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { MODELS_DIR } from './paths.js';

export const SD_TINY = path.join(MODELS_DIR, 'sd-tiny-pipeline');
export const SDXL_TINY = path.join(MODELS_DIR, 'sdxl-tiny-pipeline');

/** A writable copy of a pipeline folder (files copied, not linked: the variants edit them). */
export function copyPipeline(src: string, dst: string): string {
  fs.cpSync(src, dst, { recursive: true, dereference: true });
  for (const f of fs.readdirSync(dst, { recursive: true, withFileTypes: true })) {
    fs.chmodSync(path.join(f.parentPath, f.name), f.isDirectory() ? 0o755 : 0o644);
  }
  return dst;
}

function editUnet(dir: string, edit: (g: Graph) => void): void {
  const file = path.join(dir, 'unet', 'model.onnx');
  const model = loadModel(file);
  edit(model.graph);
  const tmp = path.join(dir, 'unet', 'model.edited.onnx');
  saveModel(model, tmp);
  fs.renameSync(tmp, file);
}

function input(g: Graph, name: string): Value {
  const v = g.inputs.find((x) => x.name === name);
  if (!v) throw new Error(`no input ${name}`);
  return v;
}

/** The UNet's `timestep` input declared as float32 (or float16) [1]; its Cast to float then converts it. */
export function withTimestepType(dir: string, dtype: DataType.FLOAT | DataType.FLOAT16): void {
  editUnet(dir, (g) => {
    const t = input(g, 'timestep');
    t.type = tensorType(dtype, [1]);
    t.typeSource = 'declared';
  });
}

/** Every float input and the output of the UNet in float16, cast to and from the float32 graph. */
export function withHalfIo(dir: string): void {
  editUnet(dir, (g) => {
    for (const name of ['sample', 'timestep', 'encoder_hidden_states']) {
      const old = input(g, name);
      if (name === 'timestep') {
        old.type = tensorType(DataType.FLOAT16, [1]);
        old.typeSource = 'declared';
        continue;
      }
      const shape = old.type?.kind === 'tensor' ? old.type.shape : null;
      g.rename(old, `${name}_f32`);
      const half = g.addInput(name, tensorType(DataType.FLOAT16, shape));
      half.typeSource = 'declared';
      const cast = g.op('Cast', [half], { attributes: { to: { type: 'int', value: DataType.FLOAT } }, output: `${name}_cast` });
      for (const use of [...old.uses]) use.node.setInput(use.index, cast);
      g.inputs.splice(g.inputs.indexOf(old), 1);
    }
    const out = g.outputs[0]!;
    const cast = g.op('Cast', [out], { attributes: { to: { type: 'int', value: DataType.FLOAT16 } }, output: `${out.name}_f16` });
    g.replaceOutput(out, cast);
    g.outputs[0]!.type = tensorType(DataType.FLOAT16, out.type?.kind === 'tensor' ? out.type.shape : null);
    g.topologicalSort();
  });
}

/** The UNet's weights in an external-data file named `name` beside it (as optimum writes `model.onnx_data`). */
export function withExternalData(dir: string, name: string): void {
  const file = path.join(dir, 'unet', 'model.onnx');
  const model = loadModel(file);
  const tmp = path.join(dir, 'unet', 'model.edited.onnx');
  saveModel(model, tmp, { externalData: true, externalDataName: name });
  fs.renameSync(tmp, file);
}

/** The tokenizer folder as tokenizer.json (from `source`, e.g. SDXL tiny's, whose vocabulary and merges are SD tiny's). */
export function withTokenizerJson(dir: string, source: string): void {
  const folder = path.join(dir, 'tokenizer');
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json']) fs.rmSync(path.join(folder, f), { force: true });
  fs.copyFileSync(path.join(source, 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
  fs.copyFileSync(path.join(source, 'tokenizer_config.json'), path.join(folder, 'tokenizer_config.json'));
}
