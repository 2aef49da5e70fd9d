/** `deltac convert model.onnx --weights ckpt.safetensors -o out.onnx`: the main job. */
import fs from 'node:fs';
import path from 'node:path';
import { type ConversionReport, convert } from '../../convert.js';
import { DeltacError } from '../../ir/errors.js';
import { formatDim } from '../../ir/types.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import { type EarlyDataCopy, type SaveOptions, type SaveResult, saveModelAsync, startDataCopy } from '../../onnx/save.js';
import { type SmokeCheckResult, checkSavedModel, formatInputs, memoryReason, skippedCheck } from '../../runtime/smoke-check.js';
import { onInterrupt } from '../interrupt.js';
import { type Command, oneLine } from '../main.js';
import { formatBytes, formatCount, type Io, parseGate, parseList, progressBar, table } from '../output.js';
import { type KernelsSummary, loadKernelEmitter } from './kernels.js';

/**
 * Creates the output's folder (and parents) if needed; a path through a file is a
 * DELTAC_E_WRITE. Returns a function that removes the folders it created if they
 * are still empty (a conversion that failed after an early start of the save).
 */
function ensureOutputFolder(output: string): () => void {
  const dir = path.dirname(path.resolve(output));
  let created: string | undefined;
  try {
    created = fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DeltacError('DELTAC_E_WRITE', `cannot create the output folder "${dir}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return () => {
    if (!created) return;
    for (let d = dir; ; d = path.dirname(d)) {
      try {
        fs.rmdirSync(d); // only while empty
      } catch {
        return;
      }
      if (d === created) return;
    }
  };
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
    '[--reuse-weights] [--compact] [--emit-kernels DIR] [--check|--no-check] [--keep-failed] [--force] [--json]\n' +
    '  -o defaults to <model>.delta.onnx next to the input. The input model and its data files are never\n' +
    '  overwritten unless --force is given; other existing files at the output path are replaced.\n' +
    '  After saving, the converted model runs once in onnxruntime (CPU) on seeded inputs at a small size\n' +
    '  (by default when its weights fit in memory; --check forces it, --no-check skips it); if it does not\n' +
    '  load, does not run or gives NaN/Inf where the original does not, the output is deleted\n' +
    '  (--keep-failed keeps it as <name>.failed.onnx) and the exit code is 1.\n' +
    "  External data starts as a copy of the input's data file when that holds most of it (the removed\n" +
    "  attention weights' space takes the new ones); --compact packs it instead (smaller, slower to write).\n" +
    '  Ctrl-C, SIGTERM or SIGHUP while writing removes the temp files; a conversion to the same output\n' +
    '  removes the temp files that a killed one left behind.',
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
    compact: { type: 'boolean' },
    'emit-kernels': { type: 'string' },
    check: { type: 'boolean' },
    'no-check': { type: 'boolean' },
    'keep-failed': { type: 'boolean' },
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
    const saveOptions: SaveOptions = {
      externalData: ext === 'always' ? true : ext === 'never' ? false : 'auto',
      reuseWeights: values['reuse-weights'] === true,
      compact: values.compact === true,
      force: values.force === true,
    };
    // Once the model is loaded, the kernel starts copying the input's data file for the
    // save while the conversion runs (removed again if the conversion fails).
    let early: EarlyDataCopy | undefined;
    let removeCreatedFolder = () => {};
    const abandon = () => {
      early?.discard();
      removeCreatedFolder();
    };
    // Interrupted, the command says so in one line (while saving, after the save removed its temp files).
    const stopping = new AbortController();
    let phase: 'converting' | 'saving' | 'checking' = 'converting';
    let bar: ReturnType<typeof progressBar> | undefined;
    const releaseInterrupts = onInterrupt((signal) => {
      bar?.stop();
      const out = JSON.stringify(oneLine(output));
      const writing = phase === 'saving' || (phase === 'converting' && early !== undefined);
      if (phase === 'converting') abandon();
      if (writing) {
        stopping.abort(new DeltacError('DELTAC_E_WRITE', `saving was interrupted by ${signal}`));
        return `deltac convert: interrupted by ${signal} while writing ${out}; its temp files were removed`;
      }
      if (phase === 'checking') return `deltac convert: interrupted by ${signal} while checking ${out}, which was written but not checked`;
      return `deltac convert: interrupted by ${signal}; nothing was written`;
    });
    try {
      const model = loadModel(input);
      const kernelsDir = values['emit-kernels'] as string | undefined;
      const emitKernels = kernelsDir ? await loadKernelEmitter() : undefined;
      let kernels: KernelsSummary | undefined;
      removeCreatedFolder = ensureOutputFolder(output);
      early = startDataCopy(model, output, saveOptions);
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
      ensureOutputFolder(output);
      phase = 'saving';
      const writing = (bar = progressBar(io, 'writing weights'));
      const saved = await saveModelAsync(model, output, {
        ...saveOptions,
        early,
        onProgress: (done, total) => writing.update(done, total),
        signal: stopping.signal,
      }).finally(() => writing.stop());
      phase = 'checking';
      for (const line of staleLines(saved)) io.err(line);
      const seconds = (performance.now() - started) / 1000;
      const check = await runCheck(input, saved, model, values);
      if (values.json) {
        io.out(JSON.stringify({ input, output: saved, report, kernels, check, seconds }, null, 2));
      } else {
        io.out(renderReport(input, report, saved, seconds, check));
        if (kernels) io.out(kernels.summary);
      }
      for (const d of report.diagnostics) if (d.severity !== 'note') io.err(`${d.severity}: ${d.message}`);
    } catch (e) {
      if (phase === 'converting') abandon();
      throw e;
    } finally {
      releaseInterrupts();
    }
  },
};

/** One line per process whose leftover temp files the save removed. */
function staleLines(saved: SaveResult): string[] {
  const byPid = new Map<number, SaveResult['staleTempFiles']>();
  for (const f of saved.staleTempFiles) byPid.set(f.pid, [...(byPid.get(f.pid) ?? []), f]);
  return [...byPid].map(
    ([pid, files]) =>
      `note: removed ${files.length === 1 ? 'a temp file' : `${files.length} temp files`} of an interrupted save to this output (process ${pid} no longer runs): ${files.map((f) => `${path.basename(f.path)} (${formatBytes(f.bytes)})`).join(', ')}`,
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

export function renderReport(input: string, r: ConversionReport, saved: SaveResult, seconds: number, check?: SmokeCheckResult): string {
  const resolutions = r.totals.map((t) => t.resolution);
  const flopsHeader = resolutions.map((res) => `FLOPs${res === null ? '' : ` @${res}`} attn→Δ`);
  const rows = r.layers.map((l) => [
    l.modulePath ?? l.id,
    l.flops?.[0] ? `${l.flops[0].height}×${l.flops[0].width}` : l.hw?.every((d) => typeof d === 'number') ? l.hw.map(formatDim).join('×') : 'dynamic',
    l.status === 'converted' ? (l.family === 'dit' ? 'patch embed' : 'proj_in') : `kept: ${l.reason}`,
    String(l.channels ?? '?'),
    l.kernel ? String(l.kernel) : '-',
    l.scales ? l.scales.join(',') : '-',
    l.gate ?? '-',
    ...resolutions.map((_, i) => {
      const f = l.flops?.[i];
      return f ? `${formatCount(f.attention)}→${formatCount(f.block)}` : '?';
    }),
  ]);
  const lines = [
    `deltac convert ${input}`,
    '',
    table(['layer', `H×W${resolutions[0] ? ` @${resolutions[0]}` : ''}`, 'H×W from', 'C', 'K', 'scales', 'gate', ...flopsHeader], rows),
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
  lines.push(`wrote            ${saved.modelPath} (${formatBytes(saved.modelBytes)})${saved.externalDataPath ? ` + ${path.basename(saved.externalDataPath)} (${formatBytes(saved.externalDataBytes)})` : ''} in ${seconds.toFixed(1)} s`);
  if (saved.baseCopy) {
    const b = saved.baseCopy;
    lines.push(
      `                 data file: a copy of ${path.basename(b.path)} with the ΔConvBlock weights in the removed weights' place${b.unreferencedBytes ? `; ${formatBytes(b.unreferencedBytes)} of it no longer referenced (--compact drops it)` : ''}`,
    );
  }
  if (check) lines.push(renderCheck(check));
  return lines.join('\n');
}

export type { Io };
