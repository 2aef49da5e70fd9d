/**
 * A pipeline folder opened for running: its layout checked for what the class needs
 * (text encoder(s), tokenizer(s), UNet, VAE decoder, scheduler config), its configs
 * read, and loaders for its models in onnxruntime-node.
 */
import { DeltacError } from '../../ir/errors.js';
import {
  type PipelineKind,
  type PipelineLayout,
  type VaeConfig,
  readJsonObject,
  readPipelineLayout,
  readVaeConfig,
  requireModel,
  requireSupported,
  tokenizerFormat,
} from '../layout.js';
import type { PipelineParts } from '../preview.js';
import type { TextEncoderPart } from '../prompt-encoding.js';
import { createScheduler, parseSchedulerConfig } from '../schedulers/index.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { type FolderFiles, openPipelineFolder } from './folder.js';
import { openOrtSession } from './ort-session.js';

export const SCHEDULER_CONFIG = 'scheduler/scheduler_config.json';

export interface OpenedPipeline {
  files: FolderFiles;
  layout: PipelineLayout;
  kind: PipelineKind;
  /** generation.json at the top of the folder, if any. */
  generation?: Record<string, unknown>;
  vae: VaeConfig;
  schedulerConfig: Record<string, unknown>;
  unetConfig?: Record<string, unknown>;
  /** [text_encoder, tokenizer] folder pairs in the order the pipeline uses them. */
  textParts: [string, string][];
}

export async function openPipeline(dir: string): Promise<OpenedPipeline> {
  const files = openPipelineFolder(dir);
  const layout = await readPipelineLayout(files);
  const kind = requireSupported(layout);
  const textParts: [string, string][] =
    kind === 'stable-diffusion-xl' ? [['text_encoder', 'tokenizer'], ['text_encoder_2', 'tokenizer_2']] : [['text_encoder', 'tokenizer']];
  for (const [encoder, tokenizer] of textParts) {
    requireModel(layout, encoder);
    if (!tokenizerFormat(files, tokenizer)) {
      throw new DeltacError(
        'DELTAC_E_TOKENIZER',
        `${tokenizer}/ of "${dir}" holds neither tokenizer.json nor vocab.json + merges.txt, the two forms of a CLIP tokenizer (it has: ${
          [...files.files.keys()].filter((f) => f.startsWith(`${tokenizer}/`)).map((f) => f.slice(tokenizer.length + 1)).join(', ') || 'nothing'
        })`,
      );
    }
  }
  requireModel(layout, 'vae_decoder');
  if (!files.files.has(SCHEDULER_CONFIG)) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', `"${dir}" has no ${SCHEDULER_CONFIG}`);
  const schedulerConfig = parseSchedulerConfig(await files.readText(SCHEDULER_CONFIG), `${SCHEDULER_CONFIG} of "${dir}"`) as Record<string, unknown>;
  return {
    files,
    layout,
    kind,
    generation: await readJsonObject(files, 'generation.json'),
    vae: await readVaeConfig(files),
    schedulerConfig,
    unetConfig: await readJsonObject(files, 'unet/config.json'),
    textParts,
  };
}

/** Everything of the pipeline but its UNet, with `scheduler` (a class name) for the loop. */
export async function pipelineParts(p: OpenedPipeline, scheduler: string): Promise<PipelineParts> {
  const text: TextEncoderPart[] = [];
  for (const [encoder, tokenizer] of p.textParts) {
    const file = p.files.absolute(`${encoder}/model.onnx`);
    text.push({ tokenizer: loadTokenizer(p.files.absolute(tokenizer)), load: () => openOrtSession(`${encoder}/model.onnx`, file) });
  }
  createScheduler(p.schedulerConfig, scheduler); // refuses an unknown scheduler or option before anything runs
  const vaeFile = p.files.absolute('vae_decoder/model.onnx');
  return {
    kind: p.kind,
    text,
    forceZerosForEmptyPrompt: p.layout.index.force_zeros_for_empty_prompt !== false,
    vae: () => openOrtSession('vae_decoder/model.onnx', vaeFile),
    vaeConfig: p.vae,
    createScheduler: () => createScheduler(p.schedulerConfig, scheduler),
  };
}
