/** `deltac convert model.onnx --weights ckpt.safetensors -o out.onnx`: the main job. */
import fs from 'node:fs';
import path from 'node:path';
import { type ConversionReport, convert } from '../../convert.js';
import { DeltacError } from '../../ir/errors.js';
import { formatDim } from '../../ir/types.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import { type SaveResult, saveModelAsync } from '../../onnx/save.js';
import { type RecalibrationResult, recalibrateQuantization } from '../../runtime/recalibrate.js';
import { type SmokeCheckResult, checkSavedModel, formatInputs, memoryReason, skippedCheck } from '../../runtime/smoke-check.js';
import type { Command } from '../main.js';
import { formatBytes, formatCount, type Io, parseGate, parseList, progressBar, table } from '../output.js';
import { type KernelsSummary, loadKernelEmitter } from './kernels.js';

/** Creates the output's folder (and parents) if needed; a path through a file is a DELTAC_E_WRITE. */
function ensureOutputFolder(output: string): void {
  const dir = path.dirname(path.resolve(output));
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DeltacError('DELTAC_E_WRITE', `cannot create the output folder "${dir}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function defaultOutputPath(input: string): string {
  const dir = path.dirname(input);
  const base = path.basename(input).replace(/(\.graph)?\.onnx$/i, '');
  return path.join(dir, `${base}.delta.onnx`);
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'replace every self-attention with a ΔConvBlock bound to distilled weights',
  usage:
    'deltac convert <model.onnx> --weights <ckpt.safetensors> [-o out.onnx] [--gate simple|sigmoid] [--scales 1,0.5] ' +
    '[--map map.json] [--allow-partial] [--emit standard|fused] [--resolution 512,1024] [--external-data auto|always|never] ' +
    '[--reuse-weights] [--emit-kernels DIR] [--check|--no-check] [--keep-failed] [--no-recalibrate] [--force] [--json]\n' +
    '  -o defaults to <model>.delta.onnx next to the input. The input model and its data files are never\n' +
    '  overwritten unless --force is given; other existing files at the output path are replaced.\n' +
    '  After saving, the converted model runs once in onnxruntime (CPU) on seeded inputs at a small size\n' +
    '  (by default when its weights fit in memory; --check forces it, --no-check skips it); if it does not\n' +
    '  load, does not run or gives NaN/Inf where the original does not, the output is deleted\n' +
    '  (--keep-failed keeps it as <name>.failed.onnx) and the exit code is 1.\n' +
    '  A statically quantized model (QDQ, QOperator) is recalibrated before saving: the activation ranges\n' +
    '  after the converted layers are widened to what its float twin reaches on seeded inputs\n' +
    '  (--no-recalibrate keeps every scale as it was).',
  options: {
    weights: { type: 'string', short: 'w' },
    output: { type: 'string', short: 'o' },
    gate: { type: 'string' },
    scales: { type: 'string' },
    map: { type: 'string' },
    'allow-partial': { type: 'boolean' },
    emit: { type: 'string' },
    resolution: { type: 'string' },
    'external-data': { type: 'string' },
    'reuse-weights': { type: 'boolean' },
    'emit-kernels': { type: 'string' },
    check: { type: 'boolean' },
    'no-check': { type: 'boolean' },
    'keep-failed': { type: 'boolean' },
    'no-recalibrate': { type: 'boolean' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const input = positionals[0];
    if (!input) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    const weights = values.weights as string | undefined;
    if (!weights) throw new DeltacError('DELTAC_E_BAD_OPTION', 'missing --weights <ckpt.safetensors> (the ΔConvFusion checkpoint)');
    const gate = parseGate(values.gate);
    const emit = (values.emit as string | undefined) ?? 'standard';
    if (emit !== 'standard' && emit !== 'fused') throw new DeltacError('DELTAC_E_BAD_OPTION', `--emit must be standard or fused, got "${emit}"`);
    const ext = (values['external-data'] as string | undefined) ?? 'auto';
    if (!['auto', 'always', 'never'].includes(ext)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--external-data must be auto, always or never`);
    const output = (values.output as string | undefined) ?? defaultOutputPath(input);
    if (values.check && values['no-check']) throw new DeltacError('DELTAC_E_BAD_OPTION', '--check and --no-check contradict each other');
    const started = performance.now();
    const model = loadModel(input);
    const kernelsDir = values['emit-kernels'] as string | undefined;
    const emitKernels = kernelsDir ? await loadKernelEmitter() : undefined;
    let kernels: KernelsSummary | undefined;
    const report = convert(model, {
      onFused: emitKernels ? (fused) => (kernels = emitKernels(fused, kernelsDir!)) : undefined,
      weights,
      gate,
      scales: parseList(values.scales as string | undefined, '--scales'),
      map: values.map as string | undefined,
      allowPartial: values['allow-partial'] === true,
      emit,
      resolutions: parseList(values.resolution as string | undefined, '--resolution'),
    });
    const recalibration = await runRecalibration(model, report, values);
    ensureOutputFolder(output);
    const bar = progressBar(io, 'writing weights');
    const saved = await saveModelAsync(model, output, {
      externalData: ext === 'always' ? true : ext === 'never' ? false : 'auto',
      reuseWeights: values['reuse-weights'] === true,
      force: values.force === true,
      onProgress: (done, total) => bar.update(done, total),
    }).finally(() => bar.stop());
    const seconds = (performance.now() - started) / 1000;
    const check = await runCheck(input, saved, model, values);
    if (values.json) {
      io.out(JSON.stringify({ input, output: saved, report, kernels, ...(recalibration ? { recalibration } : {}), check, seconds }, null, 2));
    } else {
      io.out(renderReport(input, report, saved, seconds, check, recalibration));
      if (kernels) io.out(kernels.summary);
    }
    for (const d of report.diagnostics) if (d.severity !== 'note') io.err(`${d.severity}: ${d.message}`);
  },
};

/**
 * Recalibration of a statically quantized model's activation ranges after the converted layers
 * (runtime/recalibrate.ts), before saving; undefined for a model that has none to recalibrate.
 */
async function runRecalibration(model: Model, report: ConversionReport, values: Record<string, unknown>): Promise<RecalibrationResult | undefined> {
  const converted = report.layers.filter((l) => l.status === 'converted' && l.node);
  const staticQuantized = converted.some((l) => l.quantization?.forms.some((f) => f === 'QDQ' || f === 'QOperator'));
  if (!staticQuantized) return undefined;
  const skipped = (reason: string): RecalibrationResult => ({ status: 'skipped', reason, sites: 0, widened: [], inputs: [], sets: 0, ms: 0 });
  if (values['no-recalibrate']) return skipped('--no-recalibrate');
  const tooBig = memoryReason(model);
  if (tooBig) return skipped(tooBig.replace('; --check runs it anyway', ''));
  return recalibrateQuantization(model, converted.map((l) => l.node!));
}

export function renderRecalibration(r: RecalibrationResult): string {
  if (r.status === 'skipped') return `recalibrate      skipped: ${r.reason} (activation scales after the ΔConvBlocks kept as calibrated for the attention)`;
  return (
    `recalibrate      ${r.widened.length} of ${r.sites} activation ranges after the ΔConvBlocks widened to what the float twin reaches ` +
    `on ${r.sets} seeded input set${r.sets === 1 ? '' : 's'} (${formatInputs(r.inputs)}) in ${(r.ms / 1000).toFixed(1)} s`
  );
}

/** The smoke check after saving, unless --no-check, or skipped when the weights do not fit in memory (without --check). */
async function runCheck(input: string, saved: SaveResult, model: Model, values: Record<string, unknown>): Promise<SmokeCheckResult> {
  if (values['no-check']) return skippedCheck('--no-check');
  const tooBig = values.check ? null : memoryReason(model);
  if (tooBig) return skippedCheck(tooBig);
  return checkSavedModel(input, saved, model, { keepFailed: values['keep-failed'] === true });
}

export function renderCheck(c: SmokeCheckResult): string {
  if (c.status === 'skipped') return `check            skipped: ${c.reason}`;
  const nonFinite = c.outputs.filter((o) => o.nonFinite > 0);
  return (
    `check            passed in ${(c.ms / 1000).toFixed(1)} s: onnxruntime CPU ran ${c.replacedOriginal ? 'the converted model (it replaced the original, so its outputs had to be finite)' : 'the original and the converted model'} on ${formatInputs(c.inputs)}; ` +
    (nonFinite.length ? `outputs non-finite as in the original: ${nonFinite.map((o) => o.name).join(', ')}` : 'outputs finite')
  );
}

/**
 * Kept layers grouped by why, in order of first appearance: the head of each
 * layer's reason (`no 2-D layout: …` → `no 2-D layout`), without the option
 * that allowed it.
 */
function keptGroups(layers: ConversionReport['layers']): [string, number][] {
  const groups = new Map<string, number>();
  for (const l of layers) {
    if (l.status === 'converted') continue;
    const why = (l.reason ?? 'unknown reason').replace(/\s*\(--allow-partial\)$/, '').split(':')[0]!.trim();
    groups.set(why, (groups.get(why) ?? 0) + 1);
  }
  return [...groups];
}

export function renderReport(input: string, r: ConversionReport, saved: SaveResult, seconds: number, check?: SmokeCheckResult, recalibration?: RecalibrationResult): string {
  const resolutions = r.totals.map((t) => t.resolution);
  const flopsHeader = resolutions.map((res) => `FLOPs${res === null ? '' : ` @${res}`} attn→Δ`);
  // quantized models: the forms each module was read through, and the element types at its edges and of the block
  const quantized = r.layers.some((l) => l.quantization);
  const quantCell = (l: ConversionReport['layers'][number]) => {
    const q = l.quantization;
    if (!q) return '-';
    const type = (s: string) => s.split(' ')[0];
    return `${q.forms.join('+')} ${type(q.input)}→${q.block}→${type(q.output)}`;
  };
  const rows = r.layers.map((l) => [
    l.modulePath ?? l.id,
    l.flops?.[0] ? `${l.flops[0].height}×${l.flops[0].width}` : l.hw?.every((d) => typeof d === 'number') ? l.hw.map(formatDim).join('×') : 'dynamic',
    l.status === 'converted' ? (l.family === 'dit' ? 'patch embed' : 'proj_in') : `kept: ${l.reason}`,
    String(l.channels ?? '?'),
    l.kernel ? String(l.kernel) : '-',
    l.scales ? l.scales.join(',') : '-',
    l.gate ?? '-',
    ...(quantized ? [quantCell(l)] : []),
    ...resolutions.map((_, i) => {
      const f = l.flops?.[i];
      return f ? `${formatCount(f.attention)}→${formatCount(f.block)}` : '?';
    }),
  ]);
  const lines = [
    `deltac convert ${input}`,
    '',
    table(['layer', `H×W${resolutions[0] ? ` @${resolutions[0]}` : ''}`, 'H×W from', 'C', 'K', 'scales', 'gate', ...(quantized ? ['quantized: in→block→out'] : []), ...flopsHeader], rows),
    '',
  ];
  const converted = r.layers.filter((l) => l.status === 'converted').length;
  const kept = keptGroups(r.layers).map(([why, n]) => `, ${n} kept (${why})`).join('');
  lines.push(`self-attention   ${converted} converted${kept}; cross-attention kept: ${r.crossAttention}`);
  for (const t of r.totals) {
    if (!t.attention) continue;
    lines.push(
      `FLOPs${t.resolution === null ? '' : ` @${t.resolution}px`}       self-attention ${formatCount(t.attention)} → ${formatCount(t.block)} (${(t.attention / Math.max(t.block, 1)).toFixed(1)}× fewer; MACs×2, batch 1)`,
    );
  }
  const removedBytes = r.removedInitializers.reduce((a, x) => a + x.bytes, 0);
  lines.push(`graph            ${r.nodesBefore} → ${r.nodesAfter} nodes (${r.emit === 'fused' ? 'fused ai.deltac.PyramidConvBlock kept' : 'lowered to standard ONNX'})`);
  lines.push(`weights          ${r.removedInitializers.length} attention tensors removed (${formatBytes(removedBytes)})`);
  if (recalibration) lines.push(renderRecalibration(recalibration));
  lines.push(`wrote            ${saved.modelPath} (${formatBytes(saved.modelBytes)})${saved.externalDataPath ? ` + ${path.basename(saved.externalDataPath)} (${formatBytes(saved.externalDataBytes)})` : ''} in ${seconds.toFixed(1)} s`);
  if (check) lines.push(renderCheck(check));
  return lines.join('\n');
}

export type { Io };
