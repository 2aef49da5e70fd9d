/**
 * Prompt → the UNet's text conditioning, as diffusers' pipelines form it.
 *
 * Stable Diffusion (StableDiffusionPipeline._encode_prompt):
 *   ids      = tokenizer(prompt, padding max_length 77, truncation)      [1, 77]
 *   hidden   = text_encoder(ids)[0]                                      [1, 77, D]
 *   with guidance (scale > 1) the negative prompt ("" when none) the same way, and
 *   encoder_hidden_states = concat([negative, prompt])                   [2, 77, D]
 *
 * SDXL (StableDiffusionXLPipeline.encode_prompt): each of the two encoders gives its
 * penultimate hidden state (`hidden_states.{n−2}` of optimum's export), joined on the
 * last axis; the pooled embedding is text_encoder_2's 2-D output (`text_embeds`). With
 * no negative prompt and `force_zeros_for_empty_prompt`, the negative embeddings are zeros.
 * `time_ids` = original size, crop top-left (0, 0), target size, for both halves.
 */
import { DeltacError } from '../ir/errors.js';
import { type ModelSession, type SessionLoader, type TensorData, castFloat32, float32Tensor, inputOf, toFloat32 } from './session.js';

/** What the pipeline needs of a tokenizer (`ClipTokenizer` of src/pipeline/tokenizer/). */
export interface PromptTokenizer {
  /** `model_max_length` ids, padded; `truncated` when the prompt had more tokens, `removedText` what was dropped. */
  encode(text: string): { ids: number[]; truncated: boolean; removedText?: string };
}

/** A prompt cut to the tokenizer's length, and the part dropped (diffusers prints it in its warning). */
export interface TruncatedPrompt {
  prompt: string;
  removedText: string;
}

export interface TextEncoderPart {
  tokenizer: PromptTokenizer;
  load: SessionLoader;
}

export interface Conditioning {
  /** 2 with classifier-free guidance ([negative, prompt]), else 1. */
  batch: number;
  /** encoder_hidden_states, float32 [batch, tokens, D]. */
  hiddenStates: TensorData;
  /** SDXL: text_embeds [batch, P] and time_ids [batch, 6]. */
  textEmbeds?: TensorData;
  timeIds?: TensorData;
  /** Prompts cut to the tokenizer's length (diffusers warns and goes on). */
  truncated: TruncatedPrompt[];
}

export interface PromptSettings {
  prompt: string;
  /** Undefined: none given (diffusers' `negative_prompt=None`). */
  negativePrompt?: string;
  guidanceScale: number;
  height: number;
  width: number;
}

/** Classifier-free guidance runs when the scale is above 1, as in diffusers. */
export function usesGuidance(guidanceScale: number): boolean {
  return guidanceScale > 1;
}

async function runEncoder(session: ModelSession, tokenizer: PromptTokenizer, text: string, truncated: TruncatedPrompt[]): Promise<Record<string, TensorData>> {
  const { ids, truncated: cut, removedText } = tokenizer.encode(text);
  if (cut && !truncated.some((t) => t.prompt === text)) truncated.push({ prompt: text, removedText: removedText ?? '' });
  const input = inputOf(session, 'input_ids');
  const dtype = input.dtype === 'int64' ? 'int64' : 'int32';
  const feed: TensorData =
    dtype === 'int64' ? { dtype, dims: [1, ids.length], data: BigInt64Array.from(ids, (i) => BigInt(i)) } : { dtype, dims: [1, ids.length], data: Int32Array.from(ids) };
  return session.run({ [input.name]: feed });
}

function concatBatch(parts: Float32Array[], rowDims: number[]): TensorData {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return float32Tensor(out, [parts.length, ...rowDims]);
}

/** SD 1.x/2.x: one text encoder, its first output. */
export async function encodePromptSD(part: TextEncoderPart, s: PromptSettings): Promise<Conditioning> {
  const session = await part.load();
  const truncated: TruncatedPrompt[] = [];
  try {
    const hidden = async (text: string) => {
      const out = await runEncoder(session, part.tokenizer, text, truncated);
      const t = out[session.outputNames[0]!]!;
      return { data: toFloat32(t, `${session.label} output "${session.outputNames[0]}"`), dims: t.dims };
    };
    const prompt = await hidden(s.prompt);
    const rowDims = prompt.dims.slice(1);
    if (!usesGuidance(s.guidanceScale)) return { batch: 1, hiddenStates: concatBatch([prompt.data], rowDims), truncated };
    const negative = await hidden(s.negativePrompt ?? '');
    return { batch: 2, hiddenStates: concatBatch([negative.data, prompt.data], rowDims), truncated };
  } finally {
    await session.release();
  }
}

/** `hidden_states.{n−2}`: the penultimate of the hidden-state outputs optimum exports. */
function penultimateHiddenState(session: ModelSession): string {
  const indices = session.outputNames.map((n) => /^hidden_states\.(\d+)$/.exec(n)?.[1]).filter((i): i is string => i !== undefined).map(Number);
  if (indices.length < 2) {
    throw new DeltacError(
      'DELTAC_E_UNSUPPORTED_PIPELINE',
      `${session.label} has no hidden_states.N outputs (it has ${session.outputNames.join(', ')}); SDXL needs the text encoders exported with every hidden state, as optimum does`,
    );
  }
  return `hidden_states.${Math.max(...indices) - 1}`;
}

/** The 2-D output of the second encoder (CLIPTextModelWithProjection's text_embeds). */
function pooledOutput(out: Record<string, TensorData>, session: ModelSession): TensorData {
  const name = session.outputNames.find((n) => out[n]?.dims.length === 2);
  if (!name) throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${session.label} has no pooled (2-D) output such as "text_embeds"; SDXL's second text encoder needs one`);
  return out[name]!;
}

/** SDXL: two text encoders (their hidden states joined), pooled embeddings and time ids. */
export async function encodePromptSDXL(parts: [TextEncoderPart, TextEncoderPart], s: PromptSettings, forceZerosForEmptyPrompt: boolean): Promise<Conditioning> {
  const truncated: TruncatedPrompt[] = [];
  const guided = usesGuidance(s.guidanceScale);
  const zeroNegative = s.negativePrompt === undefined && forceZerosForEmptyPrompt;
  const hidden: { prompt: Float32Array[]; negative: Float32Array[] } = { prompt: [], negative: [] };
  let tokens = 0;
  let pooled: { prompt?: Float32Array; negative?: Float32Array } = {};
  for (const [k, part] of parts.entries()) {
    const session = await part.load();
    try {
      const name = penultimateHiddenState(session);
      for (const which of guided && !zeroNegative ? (['prompt', 'negative'] as const) : (['prompt'] as const)) {
        const text = which === 'prompt' ? s.prompt : (s.negativePrompt ?? '');
        const out = await runEncoder(session, part.tokenizer, text, truncated);
        const h = out[name]!;
        tokens = h.dims[1]!;
        hidden[which].push(toFloat32(h, `${session.label} output "${name}"`));
        if (k === 1) {
          const p = pooledOutput(out, session);
          pooled = { ...pooled, [which]: toFloat32(p, `${session.label} pooled output`) };
        }
      }
    } finally {
      await session.release();
    }
  }
  const join = (rows: Float32Array[]) => {
    const widths = rows.map((r) => r.length / tokens);
    const width = widths.reduce((a, b) => a + b, 0);
    const out = new Float32Array(tokens * width);
    for (let t = 0; t < tokens; t++) {
      let o = t * width;
      rows.forEach((r, i) => {
        out.set(r.subarray(t * widths[i]!, (t + 1) * widths[i]!), o);
        o += widths[i]!;
      });
    }
    return out;
  };
  const promptHidden = join(hidden.prompt);
  const width = promptHidden.length / tokens;
  const promptPooled = pooled.prompt!;
  const timeIds = Float32Array.from([s.height, s.width, 0, 0, s.height, s.width]);
  if (!guided) {
    return {
      batch: 1,
      hiddenStates: concatBatch([promptHidden], [tokens, width]),
      textEmbeds: concatBatch([promptPooled], [promptPooled.length]),
      timeIds: concatBatch([timeIds], [6]),
      truncated,
    };
  }
  const negativeHidden = zeroNegative ? new Float32Array(promptHidden.length) : join(hidden.negative);
  const negativePooled = zeroNegative ? new Float32Array(promptPooled.length) : pooled.negative!;
  return {
    batch: 2,
    hiddenStates: concatBatch([negativeHidden, promptHidden], [tokens, width]),
    textEmbeds: concatBatch([negativePooled, promptPooled], [promptPooled.length]),
    timeIds: concatBatch([timeIds, timeIds], [6]),
    truncated,
  };
}

/** The conditioning in the element types the UNet declares (fp16 pipelines take float16). */
export function conditioningFeeds(unet: ModelSession, c: Conditioning): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  const add = (name: string, t: TensorData) => {
    const input = inputOf(unet, name);
    feeds[name] = castFloat32(t.data as Float32Array, t.dims, input.dtype, `${unet.label} input "${name}"`);
  };
  add('encoder_hidden_states', c.hiddenStates);
  if (c.textEmbeds) add('text_embeds', c.textEmbeds);
  if (c.timeIds) add('time_ids', c.timeIds);
  return feeds;
}
