/** `deltac kernels converted.onnx -o DIR`: CUDA + WGSL kernels for every PyramidConvBlock configuration. */
import { DeltacError } from '../../ir/errors.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import type { Command } from '../main.js';

export interface KernelsSummary {
  dir: string;
  configurations: number;
  files: string[];
  summary: string;
}

export type KernelEmitter = (model: Model, dir: string) => KernelsSummary;

/**
 * Loads the code generators (ts-morph is heavy: only commands that emit kernels
 * pay for it) and returns a function that emits a model's kernels into a folder.
 */
export async function loadKernelEmitter(): Promise<KernelEmitter> {
  const { emitKernels } = await import('../../codegen/emit.js');
  return (model, dir) => {
    const result = emitKernels(model, dir);
    const n = result.manifest.kernels.length;
    if (n === 0) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', 'the model has no ai.deltac.PyramidConvBlock nodes: convert it with --emit fused (or use convert --emit-kernels)');
    }
    return {
      dir,
      configurations: n,
      files: result.files,
      summary: `kernels          ${n} configuration(s), ${Object.keys(result.manifest.layers).length} layer(s) → ${dir} (${result.files.length} files)`,
    };
  };
}

export const kernelsCommand: Command = {
  name: 'kernels',
  summary: 'write CUDA and WGSL pyramid-conv kernels for an already converted model (--emit fused)',
  usage: 'deltac kernels <converted.onnx> -o <dir> [--json]',
  options: { output: { type: 'string', short: 'o' }, json: { type: 'boolean' } },
  async run(positionals, values, io) {
    const file = positionals[0];
    const dir = values.output as string | undefined;
    if (!file || !dir) throw new DeltacError('DELTAC_E_BAD_OPTION', `Usage: ${this.usage}`);
    const model = loadModel(file, { missingExternalData: 'warn' });
    const result = (await loadKernelEmitter())(model, dir);
    io.out(values.json ? JSON.stringify(result, null, 2) : result.summary);
  },
};
