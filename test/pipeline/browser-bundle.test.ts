/**
 * The schedulers and the CLIP tokenizer run in the browser page too: bundled by esbuild
 * for the browser (no Node built-ins to resolve), they tokenize and step there as in Node.
 */
import { describe, expect, it } from 'vitest';
import { createScheduler } from '../../src/pipeline/schedulers/index.js';
import { importBrowserBundle } from '../helpers/browser-bundle.js';

describe('pipeline pieces in a browser bundle', () => {
  it('bundle for the browser without Node built-ins, and run', async () => {
    const entry = `
      export { createScheduler, parseSchedulerConfig } from './src/pipeline/schedulers/index.ts';
      export { ClipTokenizer } from './src/pipeline/tokenizer/clip.ts';
    `;
    const { code, mod } = await importBrowserBundle(entry);
    expect(code).not.toMatch(/from\s+["']node:/);
    // what the page would do with it: a scheduler step and a tokenizer from vocab + merges
    const s = mod.createScheduler(mod.parseSchedulerConfig('{"_class_name": "DDIMScheduler", "clip_sample": false}'));
    s.setTimesteps(10);
    const inNode = createScheduler({ _class_name: 'DDIMScheduler', clip_sample: false });
    inNode.setTimesteps(10);
    const x = new Float32Array([1, -0.25]);
    const eps = new Float32Array([0.5, 0.125]);
    expect([...s.step(eps, 900, x)]).toEqual([...inNode.step(eps, 900, x)]);
    const vocab = { a: 0, b: 1, 'a</w>': 2, 'b</w>': 3, 'ab</w>': 4, '<|startoftext|>': 5, '<|endoftext|>': 6 };
    const tokenizer = mod.ClipTokenizer.fromVocabAndMerges(vocab, '#version: 0.2\na b</w>\n', { model_max_length: 6 });
    expect(tokenizer.encode('AB a').ids).toEqual([5, 4, 2, 6, 6, 6]);
  });
});
