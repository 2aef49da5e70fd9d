/** `deltac preview <pipeline-dir>`: the original and the converted pipeline from the same latents, side by side (src/pipeline/). */
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import { type PreviewSummary, previewPipelineFolder, readLatentsFile } from '../../pipeline/node/preview-folder.js';
import type { Command } from '../main.js';
import { type Io, type ProgressBar, parseGate, parseInteger, parseList, progressBar, table } from '../output.js';

/** `--size 512x768` (width × height) or `--size 512` (square). */
export function parseSize(text: unknown): { width: number; height: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*$/i.exec(String(text));
  const width = m ? Number(m[1]) : NaN;
  const height = m?.[2] ? Number(m[2]) : width;
  if (!(width > 0 && height > 0)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--size must be WIDTHxHEIGHT in pixels (e.g. 512x768) or one number, got "${String(text)}"`);
  return { width, height };
}

function parseNumber(text: unknown, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new DeltacError('DELTAC_E_BAD_OPTION', `${what} must be a number, got "${String(text)}"`);
  return n;
}

export const previewCommand: Command = {
  name: 'preview',
  summary: 'run a pipeline folder with its UNet and the converted one; images side by side, time per step',
  usage:
    'deltac preview <pipeline-dir> [--weights ckpt.safetensors | --compare <converted-dir>] [--prompt TEXT] [--negative-prompt TEXT] ' +
    '[--steps N] [--guidance G] [--seed N | --latents file.npy] [--size WxH] [--scheduler NAME] [-o DIR] [--gate …] [--scales …] [--map …] [--json]\n' +
    '  Runs the pipeline (optimum/diffusers ONNX folder: StableDiffusionPipeline, StableDiffusionXLPipeline) in\n' +
    '  onnxruntime (CPU) twice from the same latents: with its own UNet and with the converted one (--weights converts\n' +
    '  it in memory; --compare takes the UNet of a folder `deltac convert` wrote). Writes to -o (default\n' +
    '  preview-<folder>): original.png, delta.png, compare.png (side by side, difference map, latent deviation per\n' +
    '  step), original.npy / delta.npy (HWC float32 in [0, 1], diffusers\' output_type="np") and preview.json (settings,\n' +
    '  UNet time per step). A folder alone gives its own image. Settings not given come from the folder\'s\n' +
    '  generation.json, else diffusers\' defaults (50 steps, guidance 7.5, SDXL 5.0, the UNet\'s sample size).\n' +
    '  --seed draws the latents as torch.randn with torch.Generator("cpu").manual_seed(N) does (what diffusers\n' +
    '  gives for generator=torch.manual_seed(N) on the CPU); --latents file.npy ([1, 4, H/8, W/8]) overrides it.',
  options: {
    weights: { type: 'string', short: 'w' },
    compare: { type: 'string' },
    prompt: { type: 'string', short: 'p' },
    'negative-prompt': { type: 'string' },
    steps: { type: 'string' },
    guidance: { type: 'string' },
    seed: { type: 'string' },
    latents: { type: 'string' },
    size: { type: 'string' },
    scheduler: { type: 'string' },
    output: { type: 'string', short: 'o' },
    gate: { type: 'string' },
    scales: { type: 'string' },
    map: { type: 'string' },
    'allow-partial': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const dir = positionals[0];
    if (!dir) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing pipeline folder. Usage: ${this.usage}`);
    if (values.seed !== undefined && values.latents !== undefined) throw new DeltacError('DELTAC_E_BAD_OPTION', '--seed and --latents both give the starting latents: use one');
    const size = parseSize(values.size);
    const latentsFile = values.latents as string | undefined;
    const latents = latentsFile ? { ...readLatentsFile(latentsFile), source: latentsFile } : undefined;
    const seed = parseInteger(values.seed, '--seed');
    if (seed !== undefined && seed < 0) throw new DeltacError('DELTAC_E_BAD_OPTION', `--seed must be a non-negative integer, got ${seed}`);
    const output = (values.output as string | undefined) ?? `preview-${path.basename(path.resolve(dir))}`;
    const bars = new Map<string, ProgressBar>();
    const started = performance.now();
    let summary: PreviewSummary;
    try {
      summary = await previewPipelineFolder(dir, {
        weights: values.weights as string | undefined,
        compare: values.compare as string | undefined,
        convertOptions: {
          gate: parseGate(values.gate),
          scales: parseList(values.scales as string | undefined, '--scales'),
          map: values.map as string | undefined,
          allowPartial: values['allow-partial'] === true,
        },
        request: {
          prompt: values.prompt as string | undefined,
          negativePrompt: values['negative-prompt'] as string | undefined,
          steps: parseInteger(values.steps, '--steps', true),
          guidanceScale: parseNumber(values.guidance, '--guidance'),
          ...(size ?? {}),
          seed,
          latents,
          scheduler: values.scheduler as string | undefined,
        },
        output,
        hooks: {
          onStep: (variant, done, total) => {
            let bar = bars.get(variant);
            if (!bar) bars.set(variant, (bar = progressBar(io, `${variant.padEnd(8)} UNet steps`)));
            bar.update(done, total, `${done}/${total}`);
            if (done === total) bar.stop();
          },
        },
      });
    } finally {
      for (const bar of bars.values()) bar.stop();
    }
    for (const t of summary.result.truncated) {
      const shown = t.prompt.length > 60 ? `${t.prompt.slice(0, 57)}…` : t.prompt;
      io.err(`warning: the prompt "${shown}" has more tokens than the text encoder takes (77 with CLIP's); it was truncated, as diffusers does. Dropped: "${t.removedText.length > 200 ? `…${t.removedText.slice(-199)}` : t.removedText}"`);
    }
    for (const note of summary.settings.notes) io.err(`note: ${note}`);
    if (values.json) {
      const { result, conversion, ...rest } = summary;
      io.out(JSON.stringify({ ...rest, deviation: result.deviation[0], truncated: result.truncated, seconds: (performance.now() - started) / 1000 }, null, 2));
      return;
    }
    io.out(renderPreview(dir, summary, (performance.now() - started) / 1000));
  },
};

function renderPreview(dir: string, s: PreviewSummary, seconds: number): string {
  const st = s.settings;
  const from = (k: string) => (st.sources[k] && st.sources[k] !== 'option' ? ` (${st.sources[k]})` : '');
  const lines = [
    `deltac preview ${dir}`,
    '',
    `prompt           "${st.prompt}"${from('prompt')}${st.negativePrompt !== undefined ? `; negative "${st.negativePrompt}"` : ''}`,
    `settings         ${st.width}×${st.height}, ${st.steps} steps${from('steps')}, guidance ${st.guidanceScale}${from('guidanceScale')}, ${st.scheduler}${from('scheduler')}, ` +
      (st.seed !== undefined ? `seed ${st.seed} (torch CPU randn)` : `latents ${st.latentsFile}${from('latents')}`),
    '',
    table(
      ['UNet', 'from', 'load ms', 'median step ms', 'mean step ms', 'total ms'],
      s.models.map((m) => [m.name, m.unet, m.loadMs.toFixed(0), m.medianStepMs.toFixed(1), m.meanStepMs.toFixed(1), m.totalMs.toFixed(0)]),
      ['l', 'l', 'r', 'r', 'r', 'r'],
    ),
    '',
  ];
  if (s.speedup !== undefined) lines.push(`step time        original / converted = ${s.speedup.toFixed(2)}× (median UNet step, batch ${s.result.guidance ? 2 : 1}, onnxruntime CPU on this machine)`);
  if (s.imageDifference) {
    const last = s.result.deviation[0]?.at(-1);
    lines.push(`difference       image max |Δ| ${s.imageDifference.maxAbs.toFixed(4)}, mean ${s.imageDifference.meanAbs.toFixed(4)}; final latents ${last ? `${(100 * last.relativeRms).toFixed(2)} % RMS` : '-'}`);
  }
  lines.push(`wrote            ${s.output}/ (${s.files.join(', ')}) in ${seconds.toFixed(1)} s`);
  return lines.join('\n');
}
