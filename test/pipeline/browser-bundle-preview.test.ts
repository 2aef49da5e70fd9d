/**
 * The preview's core (folder layout, settings, text encoding, denoising loop, decoding,
 * compare picture) bundles for the browser with no Node built-ins and no onnxruntime, and
 * that bundle — given the folder's files from memory, as a picked folder gives them, and
 * sessions through the `ModelSession` interface (here onnxruntime-node's) — reproduces
 * diffusers' image of sd-tiny-pipeline.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PipelineFiles } from '../../src/pipeline/layout.js';
import { openOrtSession } from '../../src/pipeline/node/ort-session.js';
import { parseNpy, readNpy } from '../../src/runtime/npy.js';
import { importBrowserBundle } from '../helpers/browser-bundle.js';
import { SD_TINY } from '../helpers/pipeline-variants.js';

describe('the preview core in a browser bundle', () => {
  it('bundles without Node built-ins or onnxruntime, and runs sd-tiny-pipeline to diffusers\' image', async () => {
    const entry = `
      export { openPipeline, pipelineParts } from './src/pipeline/pipeline-folder.ts';
      export { resolveSettings } from './src/pipeline/settings.ts';
      export { runPreview } from './src/pipeline/preview.ts';
      export { renderComparison } from './src/pipeline/picture/compare-picture.ts';
    `;
    const { code, mod } = await importBrowserBundle(entry);
    expect(code).not.toMatch(/["']node:|onnxruntime|pngjs/);

    // The folder as a picked folder gives it: paths, sizes, contents in memory.
    const contents = new Map<string, Uint8Array>();
    for (const f of fs.readdirSync(SD_TINY, { recursive: true }) as string[]) {
      const abs = path.join(SD_TINY, f);
      if (fs.statSync(abs).isFile()) contents.set(f.split(path.sep).join('/'), fs.readFileSync(abs));
    }
    const files: PipelineFiles = {
      label: 'picked',
      files: new Map([...contents].map(([k, v]) => [k, v.length])),
      readText: async (p) => new TextDecoder().decode(contents.get(p)),
    };
    const opened = await mod.openPipeline(files);
    const settings = await mod.resolveSettings({}, opened.generation, opened.facts, async (f: string) => parseNpy(contents.get(f)!, f));
    const parts = await mod.pipelineParts(opened, settings.scheduler, (file: string) => openOrtSession(file, path.join(SD_TINY, file)));
    const result2 = await mod.runPreview([{ name: 'original', unet: () => openOrtSession('unet', path.join(SD_TINY, 'unet/model.onnx')), parts }], settings);
    const image = result2.variants[0].image.data as Float32Array;
    const reference = readNpy(path.join(SD_TINY, 'reference.original.npy')).data as Float32Array;
    let max = 0;
    for (let i = 0; i < reference.length; i++) max = Math.max(max, Math.abs(image[i]! - reference[i]!));
    expect(max).toBeLessThan(1e-4);
    const picture = mod.renderComparison(result2.variants[0].image, result2.variants[0].image, [], { original: 'A', delta: 'B' });
    expect(picture.data.length).toBe(picture.width * picture.height * 4);
  });
});
