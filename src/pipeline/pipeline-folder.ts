/**
 * A pipeline folder opened for running, from its files (`PipelineFiles`: a directory in
 * Node, a picked folder in the browser): the class checked, the parts it needs present
 * (text encoder(s) with their tokenizer(s), UNet, VAE decoder, scheduler config), its
 * configs read; then the pieces of the pipeline but its UNet, with models opened by the
 * caller's runtime (`ModelOpener`).
 */
import { DeltacError } from '../ir/errors.js';
import {
  type PipelineFiles,
  type PipelineKind,
  type PipelineLayout,
  type VaeConfig,
  readJsonObject,
  readPipelineLayout,
  readVaeConfig,
  requireModel,
  requireSupported,
  tokenizerFormat,
} from './layout.js';
import type { PipelineParts } from './preview.js';
import type { TextEncoderPart } from './prompt-encoding.js';
import { createScheduler, parseSchedulerConfig } from './schedulers/index.js';
import type { ModelSession } from './session.js';
import type { PipelineFacts } from './settings.js';
import type { ClipTokenizer } from './tokenizer/clip.js';
import { TOKENIZER_FILES, tokenizerFromFolder } from './tokenizer/folder.js';

export const SCHEDULER_CONFIG = 'scheduler/scheduler_config.json';

/** Opens a model of the folder by its relative path (`unet/model.onnx`). */
export type ModelOpener = (file: string) => Promise<ModelSession>;

export interface OpenedPipeline<F extends PipelineFiles = PipelineFiles> {
  files: F;
  layout: PipelineLayout;
  kind: PipelineKind;
  /** generation.json at the top of the folder, if any. */
  generation?: Record<string, unknown>;
  vae: VaeConfig;
  schedulerConfig: Record<string, unknown>;
  unetConfig?: Record<string, unknown>;
  /** [text encoder, tokenizer] folders in the order the pipeline uses them. */
  textParts: [string, string][];
  /** What the settings depend on (VAE factor, latent channels, sample size, scheduler). */
  facts: PipelineFacts;
}

export async function openPipeline<F extends PipelineFiles>(files: F): Promise<OpenedPipeline<F>> {
  const layout = await readPipelineLayout(files);
  const kind = requireSupported(layout);
  const textParts: [string, string][] =
    kind === 'stable-diffusion-xl' ? [['text_encoder', 'tokenizer'], ['text_encoder_2', 'tokenizer_2']] : [['text_encoder', 'tokenizer']];
  for (const [encoder, tokenizer] of textParts) {
    requireModel(layout, encoder);
    if (!tokenizerFormat(files, tokenizer)) {
      const has = [...files.files.keys()].filter((f) => f.startsWith(`${tokenizer}/`)).map((f) => f.slice(tokenizer.length + 1));
      throw new DeltacError(
        'DELTAC_E_TOKENIZER',
        `${tokenizer}/ of "${files.label}" holds neither tokenizer.json nor vocab.json + merges.txt, the two forms of a CLIP tokenizer (it has: ${has.join(', ') || 'nothing'})`,
      );
    }
  }
  requireModel(layout, 'vae_decoder');
  if (!files.files.has(SCHEDULER_CONFIG)) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `"${files.label}" has no ${SCHEDULER_CONFIG}`);
  const schedulerConfig = parseSchedulerConfig(await files.readText(SCHEDULER_CONFIG), `${SCHEDULER_CONFIG} of "${files.label}"`) as Record<string, unknown>;
  const unetConfig = await readJsonObject(files, 'unet/config.json');
  const vae = await readVaeConfig(files);
  return {
    files,
    layout,
    kind,
    generation: await readJsonObject(files, 'generation.json'),
    vae,
    schedulerConfig,
    unetConfig,
    textParts,
    facts: {
      kind,
      vaeFactor: vae.scaleFactor,
      latentChannels: typeof unetConfig?.in_channels === 'number' ? unetConfig.in_channels : 4,
      sampleSize: typeof unetConfig?.sample_size === 'number' ? unetConfig.sample_size : undefined,
      scheduler: typeof schedulerConfig._class_name === 'string' ? schedulerConfig._class_name : 'PNDMScheduler',
    },
  };
}

/** The tokenizer of a folder (`tokenizer`, `tokenizer_2`) from the pipeline's files. */
export async function folderTokenizer(files: PipelineFiles, folder: string): Promise<ClipTokenizer> {
  const texts = new Map<string, string>();
  for (const name of TOKENIZER_FILES) {
    if (files.files.has(`${folder}/${name}`)) texts.set(name, await files.readText(`${folder}/${name}`));
  }
  const listing = () => [...files.files.keys()].filter((f) => f.startsWith(`${folder}/`)).map((f) => f.slice(folder.length + 1));
  return tokenizerFromFolder((name) => texts.get(name), `${files.label}/${folder}`, listing);
}

/** Everything of the pipeline but its UNet, with `scheduler` (a class or short name) for the loop. */
export async function pipelineParts(p: OpenedPipeline, scheduler: string, open: ModelOpener): Promise<PipelineParts> {
  const text: TextEncoderPart[] = [];
  for (const [encoder, tokenizer] of p.textParts) {
    text.push({ tokenizer: await folderTokenizer(p.files, tokenizer), load: () => open(`${encoder}/model.onnx`) });
  }
  createScheduler(p.schedulerConfig, scheduler); // refuses an unknown scheduler or option before anything runs
  return {
    kind: p.kind,
    text,
    forceZerosForEmptyPrompt: p.layout.index.force_zeros_for_empty_prompt !== false,
    vae: () => open('vae_decoder/model.onnx'),
    vaeConfig: p.vae,
    createScheduler: () => createScheduler(p.schedulerConfig, scheduler),
  };
}
