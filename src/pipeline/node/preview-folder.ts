/**
 * `deltac preview <pipeline-dir>`: the pipeline run with its own UNet and with the
 * converted one — converted in memory from `weights`, or the UNet of a second folder
 * (`compare`, e.g. what `deltac convert` wrote) — from the same latents, and the
 * results written to a folder:
 *
 *   original.png, delta.png       the two images (8-bit, as diffusers' numpy_to_pil rounds)
 *   original.npy, delta.npy       HWC float32 in [0, 1], diffusers' output_type="np" layout
 *   compare.png                   side by side, the difference map, the latent deviation per step
 *   preview.json                  settings, UNet time per step of each model, deviation, totals
 *
 * A folder whose UNet has no second to compare with gives its image alone
 * (`delta.*` when its UNet carries deltac's provenance, else `original.*`).
 * The output folder is written atomically (temp folder beside it, renamed); an
 * existing one is replaced only when it is empty or an earlier preview; it may not lie
 * inside an input folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import pngjs from 'pngjs';
import { type ConversionReport, type ConvertOptions, convert } from '../../convert.js';
import { DeltacError, isDeltacError } from '../../ir/errors.js';
import { loadModel } from '../../onnx/load.js';
import { saveModel, serializeModel } from '../../onnx/save.js';
import { readProvenance } from '../../passes/delta-conv/provenance.js';
import { readNpy, writeNpy } from '../../runtime/npy.js';
import { UNET_MODEL } from '../layout.js';
import { schedulerClassName } from '../schedulers/index.js';
import { type RgbaImage, imageToRgba } from '../picture/compare-picture.js';
import { type StepTimes, comparisonPicture, previewFigures } from '../preview-summary.js';
import { type PipelineParts, type PreviewHooks, type PreviewResult, type PreviewVariant, runPreview } from '../preview.js';
import { type PreviewRequest, type ResolvedSettings, latentsFromNpy, resolveSettings } from '../settings.js';
import type { SessionLoader } from '../session.js';
import { type OpenedPipeline, pipelineParts } from '../pipeline-folder.js';
import { openPipelineDir, ortOpener } from './open-pipeline.js';
import type { FolderFiles } from './folder.js';
import { openOrtSession } from './ort-session.js';
import { commitFolder, makeTempFolder, refuseAroundInputs } from './output-folder.js';

export interface PreviewFolderOptions {
  /** Convert the folder's UNet in memory with this checkpoint (and these options). */
  weights?: string;
  convertOptions?: Omit<ConvertOptions, 'weights' | 'onPass' | 'onFused' | 'emit'>;
  /** A second pipeline folder whose UNet is the converted one. */
  compare?: string;
  request: PreviewRequest;
  output: string;
  hooks?: PreviewHooks;
  /**
   * Tensor bytes up to which a UNet converted with `weights` goes to onnxruntime as one
   * protobuf in memory (default 1.5 GiB; protobuf's limit is 2 GB); a larger one is saved
   * with external data into the temporary output folder and removed after its run.
   */
  inMemoryLimit?: number;
}

export interface PreviewModel extends StepTimes {
  name: 'original' | 'delta';
  /** Where its UNet came from. */
  unet: string;
}

export interface PreviewSummary {
  output: string;
  files: string[];
  settings: Omit<ResolvedSettings, 'latents'>;
  models: PreviewModel[];
  /** Median UNet step time of the original over the converted one's. */
  speedup?: number;
  imageDifference?: { maxAbs: number; meanAbs: number };
  result: PreviewResult;
  conversion?: ConversionReport;
}

const IN_MEMORY_LIMIT = 1.5 * 2 ** 30;

/** Refuses an output inside an input folder, or an existing folder that is neither empty nor an earlier preview. */
function checkOutput(output: string, inputs: string[]): boolean {
  refuseAroundInputs(output, inputs);
  let entries: string[];
  try {
    if (!fs.statSync(output).isDirectory()) throw new DeltacError('DELTAC_E_WRITE', `the output "${output}" exists and is not a folder`);
    entries = fs.readdirSync(output);
  } catch (e) {
    if (isDeltacError(e)) throw e;
    return false;
  }
  if (entries.length && !entries.includes('preview.json')) {
    throw new DeltacError('DELTAC_E_OUTPUT_EXISTS', `the output folder "${output}" exists and holds other files than an earlier preview; choose another with -o`);
  }
  return true;
}

/** Same bytes: the same file (hard link), or equal size and content. */
function sameContent(a: string, b: string): boolean {
  const sa = fs.statSync(a);
  const sb = fs.statSync(b);
  if (sa.dev === sb.dev && sa.ino === sb.ino) return true;
  if (sa.size !== sb.size) return false;
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  try {
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (let pos = 0; pos < sa.size; pos += ba.length) {
      const n = fs.readSync(fa, ba, 0, ba.length, pos);
      fs.readSync(fb, bb, 0, n, pos);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

/** The files of a folder other than its UNet, all equal to the other folder's (then their parts can be shared). */
export function sameNonUnetFiles(a: OpenedPipeline<FolderFiles>, b: OpenedPipeline<FolderFiles>): boolean {
  const relevant = (p: OpenedPipeline<FolderFiles>) => [...p.files.files.keys()].filter((f) => !f.startsWith('unet/') && !/^[^/]+$/.test(f)).sort();
  const fa = relevant(a);
  const fb = relevant(b);
  return fa.join('\n') === fb.join('\n') && fa.every((f) => sameContent(a.files.absolute(f), b.files.absolute(f)));
}

function encodePng(img: RgbaImage): Buffer {
  const png = new pngjs.PNG({ width: img.width, height: img.height });
  png.data.set(img.data);
  return pngjs.PNG.sync.write(png);
}

/** Reads a .npy of latents as float32 (float16 widened, float64 narrowed). */
export function readLatentsFile(file: string): { data: Float32Array; shape: number[] } {
  return latentsFromNpy(readNpy(file), file);
}

function isConverted(file: string): boolean {
  return readProvenance(loadModel(file)) !== null;
}

export async function previewPipelineFolder(dir: string, options: PreviewFolderOptions): Promise<PreviewSummary> {
  if (options.weights && options.compare) throw new DeltacError('DELTAC_E_BAD_OPTION', '--weights and --compare both give the converted UNet: use one');
  const main = await openPipelineDir(dir);
  const other = options.compare ? await openPipelineDir(options.compare) : undefined;
  if (other && other.kind !== main.kind) throw new DeltacError('DELTAC_E_BAD_OPTION', `--compare "${options.compare}" is a ${other.layout.className}, "${dir}" a ${main.layout.className}`);
  const replaces = checkOutput(options.output, [dir, ...(options.compare ? [options.compare] : [])]);

  const facts = main.facts;
  const resolved = await resolveSettings(options.request, main.generation, facts, async (file) => readLatentsFile(path.join(main.files.root, file)));
  const settings = { ...resolved, scheduler: schedulerClassName(resolved.scheduler) };
  if (settings.scheduler !== facts.scheduler && resolved.sources.scheduler === 'generation.json') {
    settings.notes.push(`generation.json asks for ${settings.scheduler}; the folder's scheduler_config.json is ${facts.scheduler} (its options are kept, as diffusers' from_config does)`);
  }
  const parts = await pipelineParts(main, settings.scheduler, ortOpener(main.files));

  // The variants: the folder's UNet, and the converted one.
  const unetFile = main.files.absolute(UNET_MODEL);
  const load = (label: string, file: string): SessionLoader => () => openOrtSession(label, file);
  const variants: (PreviewVariant & { name: 'original' | 'delta'; source: string })[] = [];
  let conversion: ConversionReport | undefined;
  const tmp = makeTempFolder(options.output);
  try {
    if (options.weights) {
      const model = loadModel(unetFile);
      conversion = convert(model, { ...options.convertOptions, weights: options.weights });
      let bytes = 0;
      for (const v of model.graph.initializers.values()) bytes += v.initializer?.byteLength ?? 0;
      let deltaLoader: SessionLoader;
      if (bytes <= (options.inMemoryLimit ?? IN_MEMORY_LIMIT)) {
        const serialized = serializeModel(model);
        deltaLoader = () => openOrtSession('unet (converted in memory)', unetFile, {}, serialized);
      } else {
        const file = path.join(tmp, '.unet', 'model.onnx');
        fs.mkdirSync(path.dirname(file));
        saveModel(model, file, { externalData: true });
        deltaLoader = load('unet (converted)', file);
      }
      variants.push({ name: 'original', source: UNET_MODEL, unet: load(UNET_MODEL, unetFile), parts });
      variants.push({ name: 'delta', source: `converted in memory with ${options.weights}`, unet: deltaLoader, parts });
    } else if (other) {
      const otherParts = sameNonUnetFiles(main, other) ? parts : await pipelineParts(other, settings.scheduler, ortOpener(other.files));
      variants.push({ name: 'original', source: UNET_MODEL, unet: load(UNET_MODEL, unetFile), parts });
      variants.push({ name: 'delta', source: path.join(options.compare!, UNET_MODEL), unet: load(`${options.compare}/${UNET_MODEL}`, other.files.absolute(UNET_MODEL)), parts: otherParts });
    } else {
      const name = isConverted(unetFile) ? 'delta' : 'original';
      variants.push({ name, source: UNET_MODEL, unet: load(UNET_MODEL, unetFile), parts });
    }

    const result = await runPreview(variants, { ...settings, latents: settings.latents, latentDims: settings.latentDims }, options.hooks);
    fs.rmSync(path.join(tmp, '.unet'), { recursive: true, force: true });

    const files: string[] = [];
    const write = (name: string, bytes: Uint8Array) => {
      fs.writeFileSync(path.join(tmp, name), bytes);
      files.push(name);
    };
    for (const r of result.variants) {
      write(`${r.name}.png`, encodePng(imageToRgba(r.image)));
      writeNpy(path.join(tmp, `${r.name}.npy`), r.image.data, [r.image.height, r.image.width, 3]);
      files.push(`${r.name}.npy`);
    }
    const comparison = comparisonPicture(result);
    if (comparison) write('compare.png', encodePng(comparison));
    const { models: times, speedup, imageDifference } = previewFigures(result);
    const models: PreviewModel[] = times.map((t, i) => ({ ...t, name: variants[i]!.name, unet: variants[i]!.source }));
    const { latents: _latents, ...shownSettings } = settings;
    const summary: PreviewSummary = {
      output: path.resolve(options.output),
      files: [...files, 'preview.json'],
      settings: shownSettings,
      models,
      ...(speedup !== undefined ? { speedup } : {}),
      ...(imageDifference ? { imageDifference } : {}),
      result,
      ...(conversion ? { conversion } : {}),
    };
    write('preview.json', new TextEncoder().encode(JSON.stringify(previewJson(dir, options, main, summary), null, 2) + '\n'));
    commitFolder(tmp, path.resolve(options.output), replaces);
    return summary;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function previewJson(dir: string, options: PreviewFolderOptions, main: OpenedPipeline<FolderFiles>, s: PreviewSummary) {
  const r = s.result;
  return {
    pipeline: { folder: dir, class: main.layout.className, ...(options.compare ? { compare: options.compare } : {}), ...(options.weights ? { weights: options.weights } : {}) },
    settings: {
      prompt: s.settings.prompt,
      negativePrompt: s.settings.negativePrompt ?? null,
      steps: s.settings.steps,
      guidanceScale: s.settings.guidanceScale,
      width: s.settings.width,
      height: s.settings.height,
      scheduler: s.settings.scheduler,
      ...(s.settings.seed !== undefined ? { seed: s.settings.seed, latents: 'torch.randn (CPU generator) of the seed' } : { latents: s.settings.latentsFile }),
      latentShape: s.settings.latentDims,
      vaeScalingFactor: main.vae.scalingFactor,
      sources: s.settings.sources,
    },
    guidance: r.guidance ? 'classifier-free, UNet batch 2 [negative, prompt]' : 'none (guidance scale ≤ 1), UNet batch 1',
    timesteps: r.variants[0]?.timesteps,
    models: s.models,
    ...(s.speedup !== undefined ? { speedup: s.speedup } : {}),
    ...(s.imageDifference ? { imageDifference: s.imageDifference } : {}),
    ...(r.deviation.length ? { latentDeviation: r.deviation[0] } : {}),
    ...(s.conversion ? { converted: s.conversion.layers.filter((l) => l.status === 'converted').map((l) => l.modulePath ?? l.id) } : {}),
    truncatedPrompts: r.truncated,
    notes: s.settings.notes,
    files: s.files,
  };
}
