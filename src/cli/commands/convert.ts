/** `deltac convert model.onnx --weights ckpt.safetensors -o out.onnx`: the main job. */
import fs from 'node:fs';
import path from 'node:path';
import { type ConversionReport, convert } from '../../convert.js';
import { DeltacError } from '../../ir/errors.js';
import { formatDim } from '../../ir/types.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import { type EarlyDataCopy, type PlannedSave, type SaveResult, saveModelAsync, startDataCopy } from '../../onnx/save.js';
import { isDirectory } from '../../pipeline/node/folder.js';
import { type CheckMode, type ConversionCheck, checkSavedModel, noCheck } from '../../runtime/conversion-check.js';
import { type LayerCheckResult, checkLayers, fmt } from '../../runtime/layer-check.js';
import { type GraphSnapshot, snapshotGraph } from '../../runtime/outside-nodes.js';
import { type RecalibrationResult, recalibrateQuantization } from '../../runtime/recalibrate.js';
import { type SmokeCheckResult, formatInputs, memoryReason } from '../../runtime/smoke-check.js';
import { onInterrupt } from '../interrupt.js';
import { type Command, oneLine } from '../main.js';
import { formatBytes, formatCount, type Io, parseGate, parseList, progressBar, table } from '../output.js';
import { type KernelsSummary, loadKernelEmitter } from './kernels.js';
import { convertPipelineCommand } from './convert-pipeline.js';

/**
 * Creates the output's folder (and parents) if needed; a path through a file is a
 * DELTAC_E_WRITE. Returns a function that removes the folders it created if they
 * are still empty (a conversion that failed after its save had started).
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
    'deltac convert <model.onnx | pipeline-dir> --weights <ckpt.safetensors> [-o out.onnx] [--gate simple|sigmoid] [--scales 1,0.5] ' +
    '[--map map.json] [--allow-partial] [--emit standard|fused] [--resolution 512,1024] [--external-data auto|always|never] ' +
    '[--reuse-weights] [--compact] [--emit-kernels DIR] [--check layers|full|--no-check] [--keep-failed] [--no-recalibrate] [--force] [--json]\n' +
    '  -o defaults to <model>.delta.onnx next to the input. The input model and its data files are never\n' +
    '  overwritten unless --force is given; other existing files at the output path are replaced.\n' +
    '  After saving, every converted layer is cut out of the saved model and run in onnxruntime (CPU) at two\n' +
    '  small sizes against the reference ΔConvBlock with its saved weights, which must equal the checkpoint\n' +
    '  (--check layers, the default); the nodes outside the layers must be the original model\'s. --check full\n' +
    '  also runs the original and the converted model once on seeded inputs (when twice the weights fit in\n' +
    '  memory); --no-check skips both. If a check fails, the output is deleted (--keep-failed keeps it as\n' +
    '  <name>.failed.onnx) and the exit code is 1.\n' +
    "  External data starts as a copy of the input's data file when that holds most of it (the removed\n" +
    "  attention weights' space takes the new ones); --compact packs it instead (smaller, slower to write).\n" +
    '  Ctrl-C, SIGTERM or SIGHUP while writing removes the temp files; a conversion to the same output\n' +
    '  removes the temp files that a killed one left behind.\n' +
    '  A statically quantized model (QDQ, QOperator) is recalibrated before saving: the activation ranges\n' +
    '  after the converted layers are widened to what its float twin reaches on seeded inputs\n' +
    '  (--no-recalibrate keeps every scale as it was).\n' +
    '  A pipeline folder (optimum/diffusers ONNX layout, with model_index.json) gives a folder (-o, default\n' +
    '  <dir>.delta): its UNet converted, every other file carried over unchanged (hard-linked or copied);\n' +
    '  written atomically, never inside the input; an existing output folder is replaced only with --force.',
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
    check: { type: 'string' },
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
    if (isDirectory(input)) return convertPipelineCommand(input, values, io);
    const gate = parseGate(values.gate);
    const emit = (values.emit as string | undefined) ?? 'standard';
    if (emit !== 'standard' && emit !== 'fused') throw new DeltacError('DELTAC_E_BAD_OPTION', `--emit must be standard or fused, got "${emit}"`);
    const ext = (values['external-data'] as string | undefined) ?? 'auto';
    if (!['auto', 'always', 'never'].includes(ext)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--external-data must be auto, always or never`);
    const output = (values.output as string | undefined) ?? defaultOutputPath(input);
    const parsedCheck = parseCheck(values);
    const check = parsedCheck === 'never' ? null : parsedCheck;
    // Interrupted, the command says so in one line (while writing, once the temp files are removed).
    const state: RunState = { phase: 'converting', stopping: new AbortController(), abandon: () => {} };
    const releaseInterrupts = onInterrupt((signal) => {
      state.bar?.stop();
      const out = JSON.stringify(oneLine(output));
      const writing = state.phase === 'saving' || (state.phase === 'converting' && state.early !== undefined);
      if (state.phase === 'converting') state.abandon();
      if (writing) {
        state.stopping.abort(new DeltacError('DELTAC_E_WRITE', `saving was interrupted by ${signal}`));
        return `deltac convert: interrupted by ${signal} while writing ${out}; its temp files were removed`;
      }
      if (state.phase === 'checking') return `deltac convert: interrupted by ${signal} while checking ${out}, which was written but not checked`;
      return `deltac convert: interrupted by ${signal}; nothing was written`;
    });
    try {
      const job = await convertAndSave(input, output, { ...values, ext, emit, gate, weights }, check !== null, io, state);
      state.phase = 'checking';
      for (const line of staleLines(job.saved)) io.err(line);
      const result = check ? await checkSavedModel(input, job.saved, { check, weights, before: job.before, keepFailed: values['keep-failed'] === true, layers: job.layers }) : noCheck('--no-check');
      const { report, saved, kernels, seconds, recalibration } = job;
      if (values.json) {
        io.out(JSON.stringify({ input, output: saved, report, kernels, ...(recalibration ? { recalibration } : {}), check: result, seconds }, null, 2));
      } else {
        io.out(renderReport(input, report, saved, seconds, result, recalibration));
        if (kernels) io.out(kernels.summary);
      }
      for (const d of report.diagnostics) if (d.severity !== 'note') io.err(`${d.severity}: ${d.message}`);
    } finally {
      releaseInterrupts();
    }
  },
};

/** Where a conversion is, for the interrupt handler: what to remove, what to say. */
interface RunState {
  phase: 'converting' | 'saving' | 'checking';
  /** The save's copy of the input's data file, started before the conversion finished. */
  early?: EarlyDataCopy;
  /** Removes what the conversion wrote before its save (the early copy, folders it created). */
  abandon: () => void;
  stopping: AbortController;
  bar?: ReturnType<typeof progressBar>;
}

/** One line per process whose leftover temp files the save removed. */
function staleLines(saved: SaveResult): string[] {
  const byPid = new Map<number, SaveResult['staleTempFiles']>();
  for (const f of saved.staleTempFiles) byPid.set(f.pid, [...(byPid.get(f.pid) ?? []), f]);
  return [...byPid].map(
    ([pid, files]) =>
      `note: removed ${files.length === 1 ? 'a temp file' : `${files.length} temp files`} of an interrupted save to this output (process ${pid} no longer runs): ${files.map((f) => `${path.basename(f.path)} (${formatBytes(f.bytes)})`).join(', ')}`,
  );
}

/** --check / --no-check: the check to run, or 'never'. */
export function parseCheck(values: Record<string, unknown>): CheckMode | 'never' {
  const value = values.check;
  if (value !== undefined && values['no-check']) throw new DeltacError('DELTAC_E_BAD_OPTION', '--check and --no-check contradict each other');
  if (values['no-check']) return 'never';
  if (value === undefined) return 'layers';
  if (value === 'layers' || value === 'full') return value;
  throw new DeltacError('DELTAC_E_BAD_OPTION', `--check must be layers or full, got "${String(value)}"`);
}

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
  if (tooBig) return skipped(tooBig);
  return recalibrateQuantization(model, converted.map((l) => l.node!));
}

export function renderRecalibration(r: RecalibrationResult): string {
  if (r.status === 'skipped') return `recalibrate      skipped: ${r.reason} (activation scales after the ΔConvBlocks kept as calibrated for the attention)`;
  return (
    `recalibrate      ${r.widened.length} of ${r.sites} activation ranges after the ΔConvBlocks widened to what the float twin reaches ` +
    `on ${r.sets} seeded input set${r.sets === 1 ? '' : 's'} (${formatInputs(r.inputs)}) in ${(r.ms / 1000).toFixed(1)} s`
  );
}

interface ConvertJob {
  report: ConversionReport;
  saved: SaveResult;
  kernels?: KernelsSummary;
  recalibration?: RecalibrationResult;
  seconds: number;
  /** The original model's structure, for the check (taken before converting). */
  before?: GraphSnapshot;
  /** The per-layer check, run while the data file was written. */
  layers?: { result: LayerCheckResult } | { error: unknown };
}

/**
 * Loads, converts and saves. The model is not returned: the check reads the saved file
 * back, so the converted model's memory is free by then. Once the model is loaded,
 * the kernel starts copying the input's data file for the save (startDataCopy) while
 * the conversion runs; a conversion that fails removes it again. With `snapshot` (a
 * check follows), the per-layer check runs while the data file is written, on the
 * model as saved (its protobuf decoded, its weights as the file will hold them), and
 * every byte it read is compared with the file once written (saveModelAsync's
 * whilePlanned): the CPU checks while the kernel copies.
 */
async function convertAndSave(
  input: string,
  output: string,
  values: Record<string, unknown> & { ext: string; emit: 'standard' | 'fused'; gate: ReturnType<typeof parseGate>; weights: string },
  snapshot: boolean,
  io: Io,
  state: RunState,
): Promise<ConvertJob> {
  const started = performance.now();
  const model = loadModel(input);
  const kernelsDir = values['emit-kernels'] as string | undefined;
  const emitKernels = kernelsDir ? await loadKernelEmitter() : undefined;
  let kernels: KernelsSummary | undefined;
  const saveOptions = {
    externalData: values.ext === 'always' ? true : values.ext === 'never' ? false : ('auto' as const),
    reuseWeights: values['reuse-weights'] === true,
    compact: values.compact === true,
    force: values.force === true,
  };
  const removeCreatedFolder = ensureOutputFolder(output);
  state.abandon = () => {
    state.early?.discard();
    removeCreatedFolder();
  };
  let report: ConversionReport;
  let before: GraphSnapshot | undefined;
  let recalibration: RecalibrationResult | undefined;
  try {
    state.early = startDataCopy(model, output, saveOptions);
    before = snapshot ? snapshotGraph(model) : undefined; // (once the copy runs)
    report = convert(model, {
    onFused: emitKernels ? (fused) => (kernels = emitKernels(fused, kernelsDir!)) : undefined,
    weights: values.weights,
    gate: values.gate,
    scales: parseList(values.scales as string | undefined, '--scales'),
    map: values.map as string | undefined,
    allowPartial: values['allow-partial'] === true,
    emit: values.emit,
    resolutions: parseList(values.resolution as string | undefined, '--resolution'),
    });
    recalibration = await runRecalibration(model, report, values);
  } catch (e) {
    state.abandon();
    throw e;
  }
  state.phase = 'saving';
  const bar = (state.bar = progressBar(io, 'writing weights'));
  let layers: ConvertJob['layers'];
  const checkWhileWriting = async (planned: PlannedSave) => {
    try {
      const result = await checkLayers(before!, planned.model, { weights: values.weights, whenReadable: planned.whenWritten });
      await planned.written;
      const differs = planned.verify();
      if (differs) {
        throw new DeltacError('DELTAC_E_CHECK_FAILED', `bytes [${differs.offset}, ${differs.offset + differs.length}) of the saved data file differ from what the check read`);
      }
      layers = { result };
    } catch (e) {
      // The save completes; the check's failure is handled after it as before (a failed check:
      // the output deleted or kept with --keep-failed; any other error: the output stays).
      layers = { error: e };
    }
  };
  const saved = await saveModelAsync(model, output, {
    ...saveOptions,
    early: state.early,
    whilePlanned: snapshot ? checkWhileWriting : undefined,
    onProgress: (done, total) => bar.update(done, total),
    signal: state.stopping.signal,
  }).finally(() => bar.stop());
  return { report, saved, kernels, recalibration, seconds: (performance.now() - started) / 1000, before, layers };
}

/** The `check` line(s) of the report: the per-layer check, and the whole-model run with --check full. */
export function renderCheck(c: ConversionCheck): string {
  if (c.status === 'skipped' || !c.layers) return `check            skipped: ${c.reason}`;
  const l = c.layers;
  const ran = l.layers.filter((x) => x.error !== null);
  const notRun = l.layers.filter((x) => x.error === null);
  const sizes = [...new Set(ran.flatMap((x) => x.sizes))];
  const statics = ran.filter((x) => x.staticHW);
  const parts: string[] = [];
  if (ran.length) {
    const worst = ran.reduce((a, x) => (x.error! / x.tolerance > a.error! / a.tolerance ? x : a));
    parts.push(
      `${ran.length} layer${ran.length > 1 ? 's' : ''} cut from the saved model ran in onnxruntime CPU at ${sizes.join(', ')} (batch×H×W${statics.length ? `; ${statics.length === ran.length ? 'H, W static in the model: its own size only' : `${statics.length} with H, W static in the model: their own size only`}` : ''}) ` +
        `and matched the reference ΔConvBlock with their saved weights (worst relative error ${fmt(worst.error!)}, ${worst.dtype} tolerance ${fmt(worst.tolerance)})`,
    );
  }
  if (!l.layers.length) parts.push('no layer was converted');
  if (notRun.length) parts.push(`${notRun.length} layer${notRun.length > 1 ? 's' : ''} not run: ${notRun[0]!.notRun}`);
  const compared = l.layers.filter((x) => x.weightError !== null);
  if (compared.length) {
    const worst = Math.max(...compared.map((x) => x.weightError!));
    parts.push(`saved weights equal the checkpoint's${worst > 0 ? ` (worst relative difference ${fmt(worst)}, a rounding)` : ''}`);
  }
  parts.push(
    'nodes' in l.outside
      ? `${l.outside.nodes.toLocaleString('en-US')} nodes outside the layers as in the original${l.outside.recalibrated ? ` (but for ${l.outside.recalibrated} quantization parameters and requantized biases the recalibration recorded)` : ''}`
      : `nodes outside the layers not compared: ${l.outside.skipped}`,
  );
  const lines = [`check            passed in ${(l.ms / 1000).toFixed(1)} s: ${parts.join('; ')}`];
  if (c.full) lines.push(renderFullCheck(c.full));
  return lines.join('\n');
}

/** The whole-model run (`--check full`). */
export function renderFullCheck(c: SmokeCheckResult): string {
  if (c.status === 'skipped') return `check (full)     skipped: ${c.reason}`;
  const nonFinite = c.outputs.filter((o) => o.nonFinite > 0);
  return (
    `check (full)     passed in ${(c.ms / 1000).toFixed(1)} s: onnxruntime CPU ran ${c.replacedOriginal ? 'the converted model (it replaced the original, so its outputs had to be finite)' : 'the original and the converted model'} on ${formatInputs(c.inputs)}; ` +
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

export function renderReport(input: string, r: ConversionReport, saved: SaveResult, seconds: number, check?: ConversionCheck, recalibration?: RecalibrationResult): string {
  const resolutions = r.totals.map((t) => t.resolution);
  const flopsHeader = resolutions.map((res) => `FLOPs${res === null ? '' : ` @${res}`} attn→Δ`);
  // the per-layer check's worst relative error, or why the layer did not run
  const checked = new Map(check?.layers?.layers.map((c) => [c.layer, c.error !== null ? fmt(c.error) : 'weights only']) ?? []);
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
    ...(checked.size ? [l.status === 'converted' ? (checked.get(l.modulePath ?? l.id) ?? '?') : '-'] : []),
  ]);
  const lines = [
    `deltac convert ${input}`,
    '',
    table(['layer', `H×W${resolutions[0] ? ` @${resolutions[0]}` : ''}`, 'H×W from', 'C', 'K', 'scales', 'gate', ...(quantized ? ['quantized: in→block→out'] : []), ...flopsHeader, ...(checked.size ? ['check (rel. err)'] : [])], rows),
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
  const functions = r.passes.find((p) => p.name === 'define-pyramid-conv-functions')?.stats?.functions ?? 0;
  const fused = `fused ai.deltac.PyramidConvBlock kept, defined by ${functions} local function${functions === 1 ? '' : 's'} (one per configuration)`;
  lines.push(`graph            ${r.nodesBefore} → ${r.nodesAfter} nodes (${r.emit === 'fused' ? fused : 'lowered to standard ONNX'})`);
  lines.push(`weights          ${r.removedInitializers.length} attention tensors removed (${formatBytes(removedBytes)})`);
  if (recalibration) lines.push(renderRecalibration(recalibration));
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
