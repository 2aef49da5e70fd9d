/**
 * `deltac analyze model.onnx -o report/`: per self-attention layer, the centroid-
 * aligned attention map, the share of attention inside K×K windows and a
 * recommended K per resolution level, the effective receptive fields of the
 * attention and (with --weights) of its ΔConvBlock, and how far that block's output
 * is from the attention's — as PNGs, index.html and JSON.
 */
import {
  analysisJson,
  analyzeModel,
  checkOutputFolder,
  localityCells,
  MASS_THRESHOLDS,
  type Resolution,
  WINDOW_SIZES,
  writeAnalysisReport,
  type AnalysisReport,
} from '../../analysis/analyze/index.js';
import { DeltacError } from '../../ir/errors.js';
import { NO_FIT_RMS, OUTLIER_FACTOR, relativeText } from '../../runtime/layer-fidelity.js';
import type { Command } from '../main.js';
import { parseGate, parseInteger, parseList, progressBar, table } from '../output.js';

/** `--resolution 512` (square), `640x384` or `640,384` (width, height), in pixels. */
export function parseResolution(text: unknown): Resolution | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+)\s*(?:[x×,]\s*(\d+)\s*)?$/i.exec(String(text));
  if (!m) throw new DeltacError('DELTAC_E_BAD_OPTION', `--resolution must be N, WxH or W,H in pixels (e.g. 512, 768x512), got "${String(text)}"`);
  return m[2] === undefined ? Number(m[1]) : { width: Number(m[1]), height: Number(m[2]) };
}

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'attention maps, locality and K, receptive fields and per-layer error of attention vs ΔConvBlock (PNG + HTML)',
  usage:
    'deltac analyze <model.onnx> -o <folder> [--weights ckpt.safetensors] [--inputs DIR | --samples N] [--resolution 512|WxH] ' +
    '[--layers PATTERN] [--queries 64] [--seed 0] [--gate simple|sigmoid] [--scales 1,0.5] [--map layers.json] [--json]\n' +
    '  Runs the model in onnxruntime on .npy inputs (--inputs, as verify reads them) or N seeded random inputs\n' +
    '  (default 2, at --resolution px: 512, or width x height as 768x512 or 768,512; default 512 or the model\'s\n' +
    '  fixed size). ERFs are the mean |dy(centre)/dx| over every input. --layers keeps layers whose module\n' +
    '  path contains PATTERN (* wildcards). With --weights (bound as convert binds them: --gate, --scales,\n' +
    '  --map), each layer\'s ΔConvBlock output is compared with the attention\'s on every captured sample:\n' +
    '  rms = |Δ|₂/|attn|₂, max = max|Δ|/max|attn|; fit "poor" when rms ≥ 1, "outlier" when ≥ 3× the median layer.\n' +
    '  Writes index.html, overview.png, layers/*.png and analysis.json; --json prints analysis.json to stdout\n' +
    '  (-o is then optional).',
  options: {
    output: { type: 'string', short: 'o' },
    weights: { type: 'string', short: 'w' },
    inputs: { type: 'string' },
    samples: { type: 'string' },
    resolution: { type: 'string' },
    layers: { type: 'string' },
    queries: { type: 'string' },
    seed: { type: 'string' },
    gate: { type: 'string' },
    scales: { type: 'string' },
    map: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const file = positionals[0];
    if (!file) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    const output = values.output as string | undefined;
    if (!output && !values.json) throw new DeltacError('DELTAC_E_BAD_OPTION', 'missing -o <folder> for the report (or --json to print it)');
    const gate = parseGate(values.gate);
    if (output) checkOutputFolder(output);
    const bar = progressBar(io, 'analyze');
    bar.update(0, 1, 'loading');
    let report: AnalysisReport;
    try {
      report = await analyzeModel(file, {
        weights: values.weights as string | undefined,
        inputs: values.inputs as string | undefined,
        samples: parseInteger(values.samples, '--samples'),
        resolution: parseResolution(values.resolution),
        layers: values.layers as string | undefined,
        queries: parseInteger(values.queries, '--queries'),
        seed: parseInteger(values.seed, '--seed'),
        gate,
        scales: parseList(values.scales as string | undefined, '--scales'),
        map: values.map as string | undefined,
        onProgress: (done, total, what) => bar.update(done, total, what),
      });
    } finally {
      bar.stop();
    }
    const flags = Object.entries(values).map(([k, v]) => (v === true ? `--${k}` : `--${k} ${String(v)}`));
    const command = ['deltac analyze', file, ...flags].join(' ');
    const files = output ? writeAnalysisReport(report, output, command) : [];
    if (values.json) {
      io.out(JSON.stringify(analysisJson(report)));
      return;
    }
    io.out(renderAnalysis(report));
    if (output) io.out(`wrote ${output}/index.html, overview.png and ${files.filter((f) => f.startsWith('layers/')).length} layer picture(s) in ${report.seconds.toFixed(1)} s`);
  },
};

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(0)}%`);

export function renderAnalysis(r: AnalysisReport): string {
  const erfSamples = r.layers[0]?.erfSamples ?? 0;
  const lines = [`deltac analyze ${r.model} — ${r.inputs}, ${r.queriesPerLayer} queries per layer, ERFs averaged over ${erfSamples} sample(s)`, ''];
  const withBlock = r.layers.some((l) => l.fidelity);
  lines.push(
    table(
      ['layer', 'H×W', ...WINDOW_SIZES.map((k) => `${k}²`), ...MASS_THRESHOLDS.map((f) => `K${f * 100}`), 'TS vs ORT', 'ΔConv K', ...(withBlock ? ['err rms', 'err max', 'fit'] : [])],
      r.layers.map((l) => [
        l.name,
        `${l.height}×${l.width}`,
        ...localityCells(l.locality).masses.map(pct),
        ...localityCells(l.locality).smallestK.map((k) => String(k ?? '-')),
        l.check.output === null ? '-' : l.check.output.toExponential(1),
        l.checkpoint ? String(l.checkpoint.kernel) : '-',
        ...(withBlock ? (l.fidelity ? [relativeText(l.fidelity.rms), relativeText(l.fidelity.rel), l.fidelity.fit] : ['-', '-', '-']) : []),
      ]),
      ['l', 'l', ...WINDOW_SIZES.map(() => 'r' as const), ...MASS_THRESHOLDS.map(() => 'r' as const), 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  lines.push('', `attention mass inside the K×K window around the query; K50/K80/K90: smallest K holding 50/80/90 %.`);
  if (withBlock) {
    const samples = r.layers.find((l) => l.fidelity)!.fidelity!.samples.length;
    lines.push(
      `ΔConvBlock (CPU reference) vs the attention's output (onnxruntime) on the captured inputs, worst of ${samples} sample(s): ` +
        `err rms = ‖Δ‖₂/‖attn‖₂, err max = max|Δ|/max|attn|; fit: poor when rms ≥ ${NO_FIT_RMS} (no closer than dropping the layer), ` +
        `outlier when ≥ ${OUTLIER_FACTOR}× the median layer's.`,
    );
  }
  lines.push('');
  lines.push(
    table(
      ['level', 'layers', `recommended K (≥ ${r.recommendMass * 100}%)`, 'checkpoint K'],
      r.levels.map((l) => [`${l.height}×${l.width}`, String(l.layers.length), String(l.recommendedK ?? '-'), l.checkpointK.length ? l.checkpointK.join(',') : '-']),
    ),
  );
  for (const n of [...r.notes, ...r.layers.flatMap((l) => l.notes.map((x) => `${l.name}: ${x}`))]) lines.push(`note: ${n}`);
  return lines.join('\n');
}
