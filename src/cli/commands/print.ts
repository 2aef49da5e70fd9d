/** `deltac print model.onnx [--filter a,b] [--shapes]`: the model as textual IR. */
import { DeltacError } from '../../ir/errors.js';
import { runInference } from '../../ir/shape-inference/infer.js';
import { printModel } from '../../ir/text/printer.js';
import { loadModel } from '../../onnx/load.js';
import type { Command } from '../main.js';

export const printCommand: Command = {
  name: 'print',
  summary: 'print a model as textual IR',
  usage: 'deltac print <model.onnx> [--filter substr[,substr…]] [--shapes] [--max-inline N]',
  options: {
    filter: { type: 'string' },
    shapes: { type: 'boolean' },
    'max-inline': { type: 'string' },
  },
  run(positionals, values, io) {
    const file = positionals[0];
    if (!file) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    const model = loadModel(file, { missingExternalData: 'warn' });
    if (values.shapes) runInference(model, { apply: true });
    const filter = typeof values.filter === 'string' ? values.filter.split(',').filter(Boolean) : undefined;
    const maxInline = values['max-inline'] !== undefined ? Number(values['max-inline']) : undefined;
    if (maxInline !== undefined && !(Number.isInteger(maxInline) && maxInline >= 0)) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', `--max-inline must be a non-negative integer`);
    }
    io.out(printModel(model, { filter, maxInlineElements: maxInline }));
  },
};
