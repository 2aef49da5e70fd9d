/**
 * The CLIP tokenizer of Stable Diffusion pipelines, as transformers' CLIPTokenizer (the
 * `tokenizers` backend that diffusers loads) encodes a prompt:
 *
 *   NFC → whitespace runs to one space → lowercase → split on CLIP's regex
 *   (contractions, letter runs, single digits, punctuation runs; the special tokens kept
 *   whole) → bytes as GPT-2's printable symbols → BPE with `</w>` marking the end of a word
 *   → <|startoftext|> … <|endoftext|>, truncated to model_max_length (77) keeping the end
 *   token, padded with the pad token (`<|endoftext|>` in SD 1.x, `!` in SD 2.x).
 *
 * The BPE itself is @huggingface/tokenizers (Hugging Face's pure-JS tokenizers, the one
 * transformers.js runs), which reads the `tokenizer.json` format. A folder with the
 * older `vocab.json` + `merges.txt` is first turned into that format by
 * `clipTokenizerJson`, field for field as transformers builds it from those files.
 * Special tokens named by tokenizer_config.json (bos, eos, unk, pad) are matched whole in
 * the prompt, as transformers does: with `!` as pad token, "!!" is two pad tokens.
 *
 * Node-free; reading the files is `loadTokenizer` (load.ts).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { DeltacError } from '../../ir/errors.js';

/** tokenizer_config.json / special_tokens_map.json, as far as deltac reads them. */
export type TokenizerConfig = Readonly<Record<string, unknown>>;

/** A `tokenizer.json` (Hugging Face tokenizers' serialization). */
export type TokenizerJson = Record<string, unknown>;

export interface ClipEncoding {
  /** Exactly `maxLength` ids: BOS, the prompt's tokens, EOS, then padding. */
  ids: number[];
  /** Whether the prompt had more tokens than fit (diffusers warns and drops them). */
  truncated: boolean;
  /** The prompt's length in tokens with BOS and EOS, before truncation. */
  tokenCount: number;
  /** The dropped part of the prompt, decoded as diffusers prints it ('' when none). */
  removedText: string;
}

/** CLIP's pre-tokenizer regex, as transformers writes it into tokenizer.json. */
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** CLIPTokenizer's defaults for the special tokens. */
const DEFAULT_SPECIALS = { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: '<|endoftext|>' };
const DEFAULT_MAX_LENGTH = 77;

const bad = (what: string) => new DeltacError('DELTAC_E_TOKENIZER', what);

interface SpecialToken {
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** A special token as tokenizer_config.json gives it: a string, or an AddedToken object. */
function specialToken(value: unknown, key: string): SpecialToken | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return { content: value, single_word: false, lstrip: false, rstrip: false, normalized: false };
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    const v = value as Record<string, unknown>;
    return { content: v['content'] as string, single_word: v['single_word'] === true, lstrip: v['lstrip'] === true, rstrip: v['rstrip'] === true, normalized: false };
  }
  throw bad(`tokenizer config: ${key} is neither a string nor a token object`);
}

/** The special tokens and max length: tokenizer_config.json first, special_tokens_map.json for what it leaves out, then CLIP's defaults. */
function resolveConfig(config: TokenizerConfig, map: TokenizerConfig = {}) {
  const cls = config['tokenizer_class'];
  if (cls !== undefined && !(typeof cls === 'string' && /^CLIPTokenizer(Fast)?$/.test(cls))) {
    throw bad(`tokenizer_class ${JSON.stringify(cls)} is not a CLIP tokenizer; deltac's pipelines use CLIPTokenizer`);
  }
  const specials = {} as Record<keyof typeof DEFAULT_SPECIALS, SpecialToken>;
  for (const key of Object.keys(DEFAULT_SPECIALS) as (keyof typeof DEFAULT_SPECIALS)[]) {
    specials[key] = specialToken(config[key], key) ?? specialToken(map[key], key) ?? specialToken(DEFAULT_SPECIALS[key], key)!;
  }
  // transformers writes a huge number when a tokenizer has no limit; CLIP's text encoder has 77 positions
  const m = config['model_max_length'];
  const maxLength = typeof m === 'number' && Number.isInteger(m) && m >= 2 && m <= 4096 ? m : DEFAULT_MAX_LENGTH;
  return { specials, maxLength };
}

function parseVocab(vocab: unknown): Record<string, number> {
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw bad('vocab.json is not a JSON object of token → id');
  const ids = new Set<number>();
  for (const [token, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw bad(`vocab.json: the id of ${JSON.stringify(token)} is not a non-negative integer`);
    if (ids.has(id)) throw bad(`vocab.json: id ${id} is given to two tokens`);
    ids.add(id);
  }
  if (ids.size === 0) throw bad('vocab.json is empty');
  return vocab as Record<string, number>;
}

/** merges.txt: an optional `#version` line, then one merge per line, two symbols separated by a space. */
function parseMerges(text: string): [string, string][] {
  const lines = text.split(/\r?\n/);
  if (lines[0]?.startsWith('#version')) lines.shift();
  return lines
    .filter((line) => line.length > 0)
    .map((line, i) => {
      const parts = line.split(' ');
      if (parts.length !== 2 || !parts[0] || !parts[1]) throw bad(`merges.txt line ${i + 2}: expected two symbols separated by one space, got ${JSON.stringify(line.slice(0, 80))}`);
      return [parts[0], parts[1]];
    });
}

/**
 * The tokenizer.json that transformers' CLIPTokenizer builds from vocab.json + merges.txt
 * and tokenizer_config.json (byte-for-byte the structure it saves).
 */
export function clipTokenizerJson(vocab: unknown, merges: string, config: TokenizerConfig = {}, specialTokensMap?: TokenizerConfig): TokenizerJson {
  const v = parseVocab(vocab);
  const { specials, maxLength } = resolveConfig(config, specialTokensMap);
  // special tokens keep their vocabulary id; one the vocabulary lacks gets the next free id
  let next = Math.max(...Object.values(v)) + 1;
  const added = new Map<string, { id: number } & SpecialToken>();
  for (const key of ['unk_token', 'bos_token', 'eos_token', 'pad_token'] as const) {
    const t = specials[key];
    if (!added.has(t.content)) added.set(t.content, { id: v[t.content] ?? next++, ...t });
  }
  const id = (key: keyof typeof specials) => added.get(specials[key].content)!.id;
  return {
    version: '1.0',
    truncation: { direction: 'Right', max_length: maxLength, strategy: 'LongestFirst', stride: 0 },
    padding: {
      strategy: { Fixed: maxLength },
      direction: 'Right',
      pad_to_multiple_of: null,
      pad_id: id('pad_token'),
      pad_type_id: 0,
      pad_token: specials.pad_token.content,
    },
    added_tokens: [...added.values()]
      .sort((a, b) => a.id - b.id)
      .map((t) => ({ id: t.id, content: t.content, single_word: t.single_word, lstrip: t.lstrip, rstrip: t.rstrip, normalized: t.normalized, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [specials.eos_token.content, id('eos_token')],
      cls: [specials.bos_token.content, id('bos_token')],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: specials.unk_token.content,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: v,
      merges: parseMerges(merges),
    },
  };
}

export class ClipTokenizer {
  /** Length of every encoding (the text encoder's positions). */
  readonly maxLength: number;
  readonly padToken: string;
  readonly padId: number;
  private readonly tokenizer: Tokenizer;

  private constructor(json: TokenizerJson, config: TokenizerConfig, specialTokensMap?: TokenizerConfig) {
    const { specials, maxLength } = resolveConfig(config, specialTokensMap);
    const model = json['model'] as Record<string, unknown> | undefined;
    if (typeof model !== 'object' || model === null || model['type'] !== 'BPE') {
      throw bad(`tokenizer.json has a ${JSON.stringify(model?.['type'] ?? 'missing')} model, not CLIP's BPE`);
    }
    try {
      this.tokenizer = new Tokenizer(json, { ...config });
    } catch (e) {
      throw bad(`tokenizer.json could not be read: ${(e as Error).message}`);
    }
    const truncation = json['truncation'] as { max_length?: unknown } | null | undefined;
    this.maxLength = config['model_max_length'] === undefined && typeof truncation?.max_length === 'number' ? truncation.max_length : maxLength;
    const padding = json['padding'] as { pad_token?: unknown } | null | undefined;
    this.padToken =
      config['pad_token'] === undefined && specialTokensMap?.['pad_token'] === undefined && typeof padding?.pad_token === 'string'
        ? padding.pad_token
        : specials.pad_token.content;
    const padId = this.tokenizer.token_to_id(this.padToken);
    if (padId === undefined) throw bad(`the pad token ${JSON.stringify(this.padToken)} is not in the vocabulary`);
    this.padId = padId;
  }

  /** From vocab.json (parsed) and merges.txt (text), with tokenizer_config.json and special_tokens_map.json when the folder has them. */
  static fromVocabAndMerges(vocab: unknown, merges: string, config: TokenizerConfig = {}, specialTokensMap?: TokenizerConfig): ClipTokenizer {
    return new ClipTokenizer(clipTokenizerJson(vocab, merges, config, specialTokensMap), config, specialTokensMap);
  }

  /** From a parsed tokenizer.json, with tokenizer_config.json and special_tokens_map.json when the folder has them. */
  static fromTokenizerJson(json: unknown, config: TokenizerConfig = {}, specialTokensMap?: TokenizerConfig): ClipTokenizer {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('tokenizer.json is not a JSON object');
    return new ClipTokenizer(json as TokenizerJson, config, specialTokensMap);
  }

  /** The prompt's ids with BOS and EOS, neither truncated nor padded. */
  tokenize(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  /** The ids the text encoder gets: truncated to maxLength keeping EOS, padded with the pad token. */
  encode(text: string): ClipEncoding {
    const full = this.tokenize(text);
    const n = this.maxLength;
    const truncated = full.length > n;
    const ids = truncated ? [...full.slice(0, n - 1), full[full.length - 1]!] : [...full, ...new Array<number>(n - full.length).fill(this.padId)];
    // as diffusers' warning: the tokens between the kept ones and EOS
    const removedText = truncated ? this.decode(full.slice(n - 1, -1)) : '';
    return { ids, truncated, tokenCount: full.length, removedText };
  }

  /** Text for ids (special tokens dropped), words separated as CLIPTokenizer.decode does. */
  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: true }).trim();
  }
}
