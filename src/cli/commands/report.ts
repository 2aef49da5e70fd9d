/**
 * `deltac report model.onnx [--resolution 512,1024] [--weights ckpt] [--baseline na:17] [--batch 32]`:
 * FLOPs and memory, attention vs ΔConvBlock, with local attention (NA) and flash-attention memory as baselines.
 */
import { PAPER_TABLE_I, reportModel, type ModelReport, type ReportLayer } from '../../analysis/report.js';
import { DeltacError } from '../../ir/errors.js';
import { loadModel } from '../../onnx/load.js';
import { Checkpoint } from '../../weights/checkpoint.js';
import type { Command } from '../main.js';
import { formatBytes, formatCount, parseInteger, parseList, table } from '../output.js';

export const reportCommand: Command = {
  name: 'report',
  summary: 'FLOPs and activation memory of every self-attention layer vs its ΔConvBlock',
  usage:
    'deltac report <model.onnx> [--resolution 512,1024,2048] [--weights ckpt.safetensors] [--baseline na:17] [--batch 32] [--json]\n' +
    '  --baseline na:K adds local attention with a K×K window; --batch B adds activation memory at batch B\n' +
    '  (self-attention with a flash kernel, no N×N matrix, vs the ΔConvBlock) next to the paper\'s Table I.',
  options: {
    resolution: { type: 'string' },
    weights: { type: 'string' },
    baseline: { type: 'string' },
    batch: { type: 'string' },
    json: { type: 'boolean' },
  },
  run(positionals, values, io) {
    const file = positionals[0];
    if (!file) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    const model = loadModel(file, { missingExternalData: 'warn' });
    const resolutions = parseList(values.resolution as string | undefined, '--resolution');
    if (resolutions?.some((r) => !(Number.isInteger(r) && r >= 8))) throw new DeltacError('DELTAC_E_BAD_OPTION', '--resolution values must be integers ≥ 8 (pixels)');
    const checkpoint = values.weights ? Checkpoint.open(values.weights as string) : undefined;
    const baseline = values.baseline as string | undefined;
    const na = baseline === undefined ? undefined : /^na:(\d+)$/i.exec(baseline);
    if (na === null || (na && !(Number(na[1]) >= 1 && Number(na[1]) % 2 === 1))) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', `--baseline must be na:K with an odd window K (e.g. na:17), got "${baseline}"`);
    }
    const batch = parseInteger(values.batch, '--batch', true);
    const report = reportModel(model, { resolutions, checkpoint, baselineWindow: na ? Number(na[1]) : undefined, batch });
    if (!report.layers.length) throw new DeltacError('DELTAC_E_NO_SELF_ATTENTION', `"${file}" has no self-attention layers and no deltac conversion record`);
    io.out(values.json ? JSON.stringify(report, null, 2) : renderModelReport(file, report));
  },
};

export function renderModelReport(file: string, r: ModelReport): string {
  const na = r.baselineWindow;
  const lines = [
    `deltac report ${file} — ${r.converted ? 'converted model: these layers were replaced by ΔConvBlocks' : 'self-attention layers and the ΔConvBlocks that would replace them'}`,
    'FLOPs = 2 × multiply-accumulates + 1 per element-wise step (softmax 3, sigmoid 4, bilinear 7 per element), batch 1; memory = peak intermediate activations.',
    ...(na ? [`NA-${na} = local attention, each query attends to the min(K,H)×min(K,W) window around it (same projections, scores materialised).`] : []),
    ...(r.batch ? [`@B${r.batch} = activation memory at batch ${r.batch}: self-attention with a flash kernel (q, k, v, output + 2 float32 softmax statistics per row and head; no N×N matrix) vs ΔConvBlock.`] : []),
    '',
  ];
  for (const t of r.totals) {
    const res = t.resolution === null ? 'model size' : `${t.resolution}×${t.resolution} px`;
    const extra = (a: ReportLayer['at'][number] | undefined): string[] => [
      ...(na ? (a?.localAttention ? [formatCount(a.localAttention.flops), formatBytes(a.localAttention.activationBytes)] : ['', '']) : []),
      ...(r.batch ? (a?.atBatch ? [formatBytes(a.atBatch.flashAttentionBytes), formatBytes(a.atBatch.blockBytes)] : ['', '']) : []),
    ];
    const rows = r.layers.flatMap((l) => {
      const a = l.at.find((x) => x.resolution === t.resolution);
      if (!a) return [[l.modulePath, '?', '', '', '', '', '', ...extra(undefined)]];
      return [[
        l.modulePath,
        `${a.height}×${a.width}×${l.channels}`,
        `K${l.kernel} ${l.gate}`,
        formatCount(a.attention.flops),
        formatCount(a.block.flops),
        formatBytes(a.attention.activationBytes),
        formatBytes(a.block.activationBytes),
        ...extra(a),
      ]];
    });
    const headers = [
      'layer', 'H×W×C', 'ΔConv', 'attn FLOPs', 'ΔConv FLOPs', 'attn memory', 'ΔConv memory',
      ...(na ? [`NA-${na} FLOPs`, `NA-${na} memory`] : []),
      ...(r.batch ? [`flash attn @B${r.batch}`, `ΔConv @B${r.batch}`] : []),
    ];
    lines.push(`at ${res}:`);
    lines.push(table(headers, rows, headers.map((_, i) => (i < 3 ? 'l' : 'r'))));
    lines.push(
      `total: ${formatCount(t.attentionFlops)} → ${formatCount(t.blockFlops)} FLOPs (${(t.attentionFlops / Math.max(1, t.blockFlops)).toFixed(1)}× fewer); peak layer memory ${formatBytes(t.attentionPeakBytes)} → ${formatBytes(t.blockPeakBytes)}`,
    );
    if (na && t.localAttentionFlops !== undefined) {
      lines.push(`NA-${na}: ${formatCount(t.localAttentionFlops)} FLOPs (${(t.localAttentionFlops / Math.max(1, t.blockFlops)).toFixed(1)}× the ΔConvBlocks'); peak layer memory ${formatBytes(t.localAttentionPeakBytes ?? 0)}`);
    }
    if (r.batch && t.flashPeakBytesAtBatch !== undefined) {
      lines.push(`batch ${r.batch}: peak layer memory, flash self-attention ${formatBytes(t.flashPeakBytesAtBatch)} vs ΔConvBlock ${formatBytes(t.blockPeakBytesAtBatch ?? 0)}`);
    }
    lines.push('');
  }
  if (r.batch) {
    lines.push(
      `paper, Table I (measured VRAM, batch 32, FlashAttention; whole-GPU figures, not this count): ${PAPER_TABLE_I.map((p) => `${p.resolution} ${p.selfAttentionGB} GB vs ${p.blockGB} GB`).join('; ')}`,
    );
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
