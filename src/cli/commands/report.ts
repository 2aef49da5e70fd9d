/** `deltac report model.onnx [--resolution 512,1024] [--weights ckpt]`: FLOPs and memory, attention vs ΔConvBlock. */
import { reportModel, type ModelReport } from '../../analysis/report.js';
import { DeltacError } from '../../ir/errors.js';
import { loadModel } from '../../onnx/load.js';
import { Checkpoint } from '../../weights/checkpoint.js';
import type { Command } from '../main.js';
import { formatBytes, formatCount, table } from '../output.js';
import { parseList } from './convert.js';

export const reportCommand: Command = {
  name: 'report',
  summary: 'FLOPs and activation memory of every self-attention layer vs its ΔConvBlock',
  usage: 'deltac report <model.onnx> [--resolution 512,1024,2048] [--weights ckpt.safetensors] [--json]',
  options: { resolution: { type: 'string' }, weights: { type: 'string' }, json: { type: 'boolean' } },
  run(positionals, values, io) {
    const file = positionals[0];
    if (!file) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    const model = loadModel(file, { missingExternalData: 'warn' });
    const resolutions = parseList(values.resolution as string | undefined, '--resolution');
    if (resolutions?.some((r) => !(Number.isInteger(r) && r >= 8))) throw new DeltacError('DELTAC_E_BAD_OPTION', '--resolution values must be integers ≥ 8 (pixels)');
    const checkpoint = values.weights ? Checkpoint.open(values.weights as string) : undefined;
    const report = reportModel(model, { resolutions, checkpoint });
    if (!report.layers.length) throw new DeltacError('DELTAC_E_NO_SELF_ATTENTION', `"${file}" has no self-attention layers and no deltac conversion record`);
    io.out(values.json ? JSON.stringify(report, null, 2) : renderModelReport(file, report));
  },
};

export function renderModelReport(file: string, r: ModelReport): string {
  const lines = [
    `deltac report ${file} — ${r.converted ? 'converted model: these layers were replaced by ΔConvBlocks' : 'self-attention layers and the ΔConvBlocks that would replace them'}`,
    'FLOPs = 2 × multiply-accumulates + 1 per element-wise step (softmax 3, sigmoid 4, bilinear 7 per element), batch 1; memory = peak intermediate activations.',
    '',
  ];
  for (const t of r.totals) {
    const res = t.resolution === null ? 'model size' : `${t.resolution}×${t.resolution} px`;
    const rows = r.layers.flatMap((l) => {
      const a = l.at.find((x) => x.resolution === t.resolution);
      if (!a) return [[l.modulePath, '?', '', '', '', '', '']];
      return [[
        l.modulePath,
        `${a.height}×${a.width}×${l.channels}`,
        `K${l.kernel} ${l.gate}`,
        formatCount(a.attention.flops),
        formatCount(a.block.flops),
        formatBytes(a.attention.activationBytes),
        formatBytes(a.block.activationBytes),
      ]];
    });
    lines.push(`at ${res}:`);
    lines.push(table(['layer', 'H×W×C', 'ΔConv', 'attn FLOPs', 'ΔConv FLOPs', 'attn memory', 'ΔConv memory'], rows, ['l', 'l', 'l', 'r', 'r', 'r', 'r']));
    lines.push(
      `total: ${formatCount(t.attentionFlops)} → ${formatCount(t.blockFlops)} FLOPs (${(t.attentionFlops / Math.max(1, t.blockFlops)).toFixed(1)}× fewer); peak layer memory ${formatBytes(t.attentionPeakBytes)} → ${formatBytes(t.blockPeakBytes)}`,
      '',
    );
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
