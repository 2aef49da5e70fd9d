/**
 * The CLIP tokenizer against transformers: every prompt of
 * ../shared/references/clip-tokenizer*\/reference_ids.json (padding `<|endoftext|>` as SD 1.x,
 * `!` as SD 2.x; unicode, punctuation, contractions, literal special tokens, over-long
 * prompts) from vocab.json + merges.txt, from the tokenizer.json deltac converts them to
 * (test/fixtures/pipeline/clip-tokenizer-json*), and from the tokenizer.json files that
 * transformers itself wrote into ../shared/models/sdxl-tiny-pipeline (same vocabulary).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer, clipTokenizerJson } from '../../src/pipeline/tokenizer/clip.js';
import { loadTokenizer } from '../../src/pipeline/tokenizer/load.js';
import { makeTempDir, MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';

const REFERENCES = path.resolve(REPO_ROOT, '../shared/references');
const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/pipeline');
const SDXL = path.join(MODELS_DIR, 'sdxl-tiny-pipeline');

interface Case {
  prompt: string;
  input_ids: number[];
  tokens_unpadded: number[];
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const cases = (reference: string): Case[] => readJson(path.join(REFERENCES, reference, 'reference_ids.json')).cases;

const FOLDERS = [
  // reference ids, then every folder that must reproduce them: vocab + merges, deltac's tokenizer.json, transformers' tokenizer.json
  { reference: 'clip-tokenizer', pad: '<|endoftext|>', folders: [path.join(REFERENCES, 'clip-tokenizer'), path.join(FIXTURES, 'clip-tokenizer-json'), path.join(SDXL, 'tokenizer')] },
  { reference: 'clip-tokenizer-pad0', pad: '!', folders: [path.join(REFERENCES, 'clip-tokenizer-pad0'), path.join(FIXTURES, 'clip-tokenizer-json-pad0'), path.join(SDXL, 'tokenizer_2')] },
];

describe('CLIP tokenizer reproduces transformers', () => {
  for (const { reference, pad, folders } of FOLDERS) {
    for (const folder of folders) {
      it(`${path.basename(path.dirname(folder))}/${path.basename(folder)}: every prompt of ${reference}`, () => {
        const tokenizer = loadTokenizer(folder);
        expect(tokenizer.maxLength).toBe(77);
        expect(tokenizer.padToken).toBe(pad);
        const all = cases(reference);
        expect(all.length).toBeGreaterThanOrEqual(12);
        for (const c of all) {
          const encoded = tokenizer.encode(c.prompt);
          expect(encoded.ids, c.prompt).toEqual(c.input_ids);
          expect(tokenizer.tokenize(c.prompt), c.prompt).toEqual(c.tokens_unpadded);
          expect(encoded.truncated, c.prompt).toBe(c.tokens_unpadded.length > 77);
          expect(encoded.tokenCount).toBe(c.tokens_unpadded.length);
        }
      });
    }
  }

  it('reports what a prompt over 77 tokens loses, as diffusers warns', () => {
    const tokenizer = loadTokenizer(path.join(REFERENCES, 'clip-tokenizer'));
    const encoded = tokenizer.encode(Array(100).fill('word').join(' '));
    expect(encoded.truncated).toBe(true);
    expect(encoded.tokenCount).toBe(102);
    expect(encoded.ids).toHaveLength(77);
    expect(encoded.ids[76]).toBe(3513);
    // tokens 76 … 100 of the untruncated ids: the last 25 words
    expect(encoded.removedText).toBe(Array(25).fill('word').join(' '));
    expect(tokenizer.encode('a photograph').removedText).toBe('');
  });
});

describe('vocab.json + merges.txt → tokenizer.json', () => {
  for (const [reference, sdxl, fixture] of [
    ['clip-tokenizer', 'tokenizer', 'clip-tokenizer-json'],
    ['clip-tokenizer-pad0', 'tokenizer_2', 'clip-tokenizer-json-pad0'],
  ] as const) {
    const dir = path.join(REFERENCES, reference);
    const converted = () =>
      clipTokenizerJson(readJson(path.join(dir, 'vocab.json')), fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8'), readJson(path.join(dir, 'tokenizer_config.json')));

    it(`${reference}: is the tokenizer.json transformers writes for the same files`, () => {
      expect(converted()).toEqual(readJson(path.join(SDXL, sdxl, 'tokenizer.json')));
    });

    it(`${reference}: the committed fixture is the converter's current output`, () => {
      expect(readJson(path.join(FIXTURES, fixture, 'tokenizer.json'))).toEqual(converted());
    });
  }

  it('gives a special token the vocabulary lacks the next free id', () => {
    const json = clipTokenizerJson({ a: 0, 'a</w>': 1, '<|startoftext|>': 2, '<|endoftext|>': 3 }, '#version: 0.2\n', { pad_token: '<pad>' });
    expect(json['added_tokens']).toEqual([
      expect.objectContaining({ id: 2, content: '<|startoftext|>' }),
      expect.objectContaining({ id: 3, content: '<|endoftext|>' }),
      expect.objectContaining({ id: 4, content: '<pad>' }),
    ]);
    const tokenizer = ClipTokenizer.fromVocabAndMerges({ a: 0, 'a</w>': 1, '<|startoftext|>': 2, '<|endoftext|>': 3 }, '', { pad_token: '<pad>' });
    expect(tokenizer.encode('a').ids.slice(0, 4)).toEqual([2, 1, 3, 4]);
  });

  it('takes special tokens given as AddedToken objects (older tokenizer_config.json) and from special_tokens_map.json', () => {
    const vocab = readJson(path.join(REFERENCES, 'clip-tokenizer', 'vocab.json'));
    const merges = fs.readFileSync(path.join(REFERENCES, 'clip-tokenizer', 'merges.txt'), 'utf8');
    const tokenizer = ClipTokenizer.fromVocabAndMerges(
      vocab,
      merges,
      { bos_token: { __type: 'AddedToken', content: '<|startoftext|>', lstrip: false, normalized: true, rstrip: false, single_word: false }, model_max_length: 77 },
      { pad_token: '!' },
    );
    expect(tokenizer.padToken).toBe('!');
    expect(tokenizer.encode('').ids.slice(0, 3)).toEqual([3512, 3513, 0]);
  });
});

describe('tokenizer folders deltac refuses', () => {
  const expectCode = (fn: () => unknown, code: string, message?: RegExp) => {
    try {
      fn();
    } catch (e) {
      expect((e as { code?: string }).code).toBe(code);
      if (message) expect((e as Error).message).toMatch(message);
      return;
    }
    throw new Error('expected an error');
  };

  const withFolder = (files: Record<string, string>, fn: (dir: string) => void) => {
    const { dir, cleanup } = makeTempDir('deltac-tokenizer-');
    try {
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
      fn(dir);
    } finally {
      cleanup();
    }
  };

  it('a folder in neither format, naming what it has', () => {
    withFolder({ 'vocab.txt': 'a\n', 'tokenizer_config.json': '{}' }, (dir) =>
      expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /neither tokenizer.json nor vocab.json \+ merges.txt \(it has: tokenizer_config.json, vocab.txt\)/),
    );
    expectCode(() => loadTokenizer(path.join(FIXTURES, 'no-such-folder')), 'DELTAC_E_TOKENIZER', /does not exist/);
  });

  it('malformed vocab.json, merges.txt, tokenizer.json or config', () => {
    const merges = '#version: 0.2\na b\n';
    withFolder({ 'vocab.json': '{"a": 0,', 'merges.txt': merges }, (dir) => expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /vocab.json is not valid JSON/));
    withFolder({ 'vocab.json': '["a"]', 'merges.txt': merges }, (dir) => expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /not a JSON object of token/));
    withFolder({ 'vocab.json': '{"a": 0, "b": 0}', 'merges.txt': merges }, (dir) => expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /id 0 is given to two tokens/));
    withFolder({ 'vocab.json': '{"a": 0, "b": 1}', 'merges.txt': '#version: 0.2\na b c\n' }, (dir) =>
      expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /merges.txt line 2/),
    );
    withFolder({ 'tokenizer.json': JSON.stringify({ model: { type: 'Unigram', vocab: [] } }) }, (dir) =>
      expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /"Unigram" model, not CLIP's BPE/),
    );
    withFolder({ 'tokenizer.json': '{}', 'tokenizer_config.json': '{"tokenizer_class": "T5TokenizerFast"}' }, (dir) =>
      expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /not a CLIP tokenizer/),
    );
    withFolder({ 'tokenizer.json': '{}', 'tokenizer_config.json': '[1]' }, (dir) => expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /not a JSON object/));
  });

  it('tokenizer.json is preferred when the folder also has vocab.json + merges.txt (as transformers does)', () => {
    const json = fs.readFileSync(path.join(FIXTURES, 'clip-tokenizer-json-pad0', 'tokenizer.json'), 'utf8');
    withFolder({ 'tokenizer.json': json, 'vocab.json': 'not json', 'merges.txt': '' }, (dir) => {
      const tokenizer = loadTokenizer(dir);
      expect(tokenizer.padToken).toBe('!');
      expect(tokenizer.encode('a cat').ids.slice(0, 5)).toEqual([3512, 320, 1024, 3513, 0]);
    });
  });

  it('a pad token the tokenizer.json does not know', () => {
    const json = fs.readFileSync(path.join(FIXTURES, 'clip-tokenizer-json', 'tokenizer.json'), 'utf8');
    withFolder({ 'tokenizer.json': json, 'tokenizer_config.json': '{"pad_token": "<pad>"}' }, (dir) =>
      expectCode(() => loadTokenizer(dir), 'DELTAC_E_TOKENIZER', /pad token "<pad>" is not in the vocabulary/),
    );
  });
});
