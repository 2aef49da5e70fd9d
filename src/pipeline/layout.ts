/**
 * ONNX pipeline folders as optimum and diffusers write them:
 *
 *   model_index.json              {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "OnnxRuntimeModel"], …}
 *   scheduler/scheduler_config.json
 *   tokenizer/                    vocab.json + merges.txt, or tokenizer.json
 *   text_encoder/model.onnx       (+ text_encoder_2/, tokenizer_2/ for SDXL)
 *   unet/model.onnx               (+ external data: model.onnx_data, weights.pb, …)
 *   vae_decoder/model.onnx        config.json holds scaling_factor and block_out_channels
 *   vae_encoder/, safety_checker/, feature_extractor/ …
 *
 * This file reads the layout from a listing of the folder's files (`PipelineFiles`),
 * so that the browser (a picked folder) and Node (a directory) share it.
 */
import { DeltacError } from '../ir/errors.js';

/** A pipeline folder's regular files by relative path ('/'-separated) with their sizes, and a reader. */
export interface PipelineFiles {
  /** Names the folder in messages. */
  readonly label: string;
  readonly files: ReadonlyMap<string, number>;
  readText(path: string): Promise<string>;
}

export type PipelineKind = 'stable-diffusion' | 'stable-diffusion-xl';

/**
 * The pipeline classes deltac runs (`model_index.json` `_class_name`): diffusers'
 * torch classes (optimum keeps their names), diffusers' ONNX class and optimum's.
 */
export const SUPPORTED_PIPELINES: Readonly<Record<string, PipelineKind>> = {
  StableDiffusionPipeline: 'stable-diffusion',
  OnnxStableDiffusionPipeline: 'stable-diffusion',
  ORTStableDiffusionPipeline: 'stable-diffusion',
  StableDiffusionXLPipeline: 'stable-diffusion-xl',
  ORTStableDiffusionXLPipeline: 'stable-diffusion-xl',
};

export const MODEL_INDEX = 'model_index.json';
export const UNET_MODEL = 'unet/model.onnx';

export interface PipelineComponent {
  /** Folder name (`unet`, `text_encoder`, …). */
  name: string;
  /** `["diffusers", "OnnxRuntimeModel"]` of model_index.json, when listed there. */
  library?: string;
  className?: string;
  files: { path: string; bytes: number }[];
  /** `<name>/model.onnx` when the folder holds one. */
  model?: string;
}

export type TokenizerFormat = 'tokenizer.json' | 'vocab.json + merges.txt';

export interface PipelineLayout {
  label: string;
  className: string;
  /** Null when deltac cannot run this class (it can still convert its UNet). */
  kind: PipelineKind | null;
  index: Record<string, unknown>;
  components: PipelineComponent[];
  /** Files at the top of the folder (model_index.json, generation.json, …). */
  topFiles: { path: string; bytes: number }[];
}

function parseJson(text: string, file: string, label: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `${file} of "${label}" is not valid JSON (${(e as Error).message})`);
  }
}

/** Reads and parses a JSON object file of the folder; `undefined` when the folder has no such file. */
export async function readJsonObject(files: PipelineFiles, file: string): Promise<Record<string, unknown> | undefined> {
  if (!files.files.has(file)) return undefined;
  const value = parseJson(await files.readText(file), file, files.label);
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `${file} of "${files.label}" is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The folder's components. A folder without model_index.json or without
 * unet/model.onnx is DELTAC_E_PIPELINE_FOLDER; an unknown class is not an error
 * here (`kind` null): `convert` only needs the UNet, `preview` refuses it.
 */
export async function readPipelineLayout(files: PipelineFiles): Promise<PipelineLayout> {
  const index = await readJsonObject(files, MODEL_INDEX);
  if (!index) {
    throw new DeltacError(
      'DELTAC_E_PIPELINE_FOLDER',
      `"${files.label}" is a folder without ${MODEL_INDEX}, so not an ONNX pipeline folder (optimum/diffusers layout); to convert one model, pass its .onnx file`,
    );
  }
  const className = typeof index._class_name === 'string' ? index._class_name : '';
  if (!className) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `${MODEL_INDEX} of "${files.label}" has no "_class_name"`);
  const byFolder = new Map<string, { path: string; bytes: number }[]>();
  const topFiles: { path: string; bytes: number }[] = [];
  for (const [path, bytes] of [...files.files].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const slash = path.indexOf('/');
    if (slash < 0) topFiles.push({ path, bytes });
    else {
      const folder = path.slice(0, slash);
      byFolder.set(folder, [...(byFolder.get(folder) ?? []), { path, bytes }]);
    }
  }
  const components: PipelineComponent[] = [];
  const named = Object.keys(index).filter((k) => !k.startsWith('_') && Array.isArray(index[k]));
  for (const name of [...named, ...[...byFolder.keys()].filter((f) => !named.includes(f))]) {
    const entry = index[name] as unknown[] | undefined;
    const componentFiles = byFolder.get(name) ?? [];
    if (entry && entry.every((e) => e === null) && !componentFiles.length) continue; // `"safety_checker": [null, null]`
    components.push({
      name,
      ...(typeof entry?.[0] === 'string' ? { library: entry[0] } : {}),
      ...(typeof entry?.[1] === 'string' ? { className: entry[1] } : {}),
      files: componentFiles,
      ...(componentFiles.some((f) => f.path === `${name}/model.onnx`) ? { model: `${name}/model.onnx` } : {}),
    });
  }
  if (!files.files.has(UNET_MODEL)) {
    const has = components.filter((c) => c.files.length).map((c) => c.name);
    throw new DeltacError(
      'DELTAC_E_PIPELINE_FOLDER',
      `"${files.label}" has no ${UNET_MODEL} (its components: ${has.join(', ') || 'none'}); deltac converts and previews pipelines whose denoiser is a UNet exported to ONNX`,
    );
  }
  return { label: files.label, className, kind: SUPPORTED_PIPELINES[className] ?? null, index, components, topFiles };
}

/** Refuses a class deltac cannot run, naming the ones it can. */
export function requireSupported(layout: PipelineLayout): PipelineKind {
  if (layout.kind) return layout.kind;
  throw new DeltacError(
    'DELTAC_E_UNSUPPORTED_PIPELINE',
    `"${layout.label}" is a ${layout.className}; deltac runs ${Object.keys(SUPPORTED_PIPELINES).join(', ')} (text-to-image)`,
  );
}

/** The model file of a component the pipeline cannot run without. */
export function requireModel(layout: PipelineLayout, name: string): string {
  const c = layout.components.find((x) => x.name === name);
  if (!c?.model) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `"${layout.label}" has no ${name}/model.onnx, which a ${layout.className} needs`);
  return c.model;
}

/** Which of the two tokenizer formats a tokenizer folder holds, or null. */
export function tokenizerFormat(files: PipelineFiles, folder: string): TokenizerFormat | null {
  if (files.files.has(`${folder}/tokenizer.json`)) return 'tokenizer.json';
  if (files.files.has(`${folder}/vocab.json`) && files.files.has(`${folder}/merges.txt`)) return 'vocab.json + merges.txt';
  return null;
}

export interface VaeConfig {
  scalingFactor: number;
  shiftFactor: number;
  /** Pixels per latent cell: 2^(levels − 1), 8 for SD. */
  scaleFactor: number;
  /** Where the numbers came from (`vae_decoder/config.json`, or `default`). */
  source: string;
}

/** The VAE's scaling factor and downsampling factor from vae_decoder/config.json (diffusers' defaults without it). */
export async function readVaeConfig(files: PipelineFiles): Promise<VaeConfig> {
  for (const file of ['vae_decoder/config.json', 'vae/config.json', 'vae_encoder/config.json']) {
    const config = await readJsonObject(files, file);
    if (!config) continue;
    const blocks = Array.isArray(config.block_out_channels) ? config.block_out_channels.length : 4;
    const scaling = config.scaling_factor;
    const shift = config.shift_factor;
    if (scaling !== undefined && !(typeof scaling === 'number' && scaling > 0)) {
      throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `${file} of "${files.label}" has scaling_factor ${JSON.stringify(scaling)}; a positive number was expected`);
    }
    return {
      scalingFactor: typeof scaling === 'number' ? scaling : 0.18215,
      shiftFactor: typeof shift === 'number' ? shift : 0,
      scaleFactor: 2 ** Math.max(0, blocks - 1),
      source: file,
    };
  }
  return { scalingFactor: 0.18215, shiftFactor: 0, scaleFactor: 8, source: 'default (no vae_decoder/config.json)' };
}
