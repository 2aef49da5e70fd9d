/**
 * Bad input: self-attention whose tokens have no 2-D layout (a CLIP-like text
 * encoder). Every such layer is named in one DELTAC_E_SPATIAL_DIMS error and
 * nothing is written; --allow-partial keeps their attention, says so per layer,
 * and writes a model that still runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { DeltacError } from '../../src/ir/errors.js';
import { saveModel } from '../../src/onnx/save.js';
import { buildTextEncoder } from '../fixtures/full-size/text-encoder.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, makeTempDir } from '../helpers/paths.js';
import { deltaCheckpointTensors, writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-no-layout-');
afterAll(tmp.cleanup);

describe('self-attention without a 2-D layout (text encoder)', () => {
  const encoder = buildTextEncoder(3);
  const model = path.join(tmp.dir, 'text-encoder.onnx');
  const weights = path.join(tmp.dir, 'delta.safetensors');
  saveModel(encoder.model, model);
  writeSafetensors(weights, deltaCheckpointTensors(encoder.blocks.map((b) => ({ block: b, channels: 32, kernel: 3 }))));

  it('is refused with DELTAC_E_SPATIAL_DIMS naming every layer, and nothing is converted', () => {
    const m = buildTextEncoder(3).model;
    const nodes = m.graph.nodes.length;
    let error: DeltacError | undefined;
    try {
      convert(m, { weights });
    } catch (e) {
      error = e as DeltacError;
    }
    expect(error?.code).toBe('DELTAC_E_SPATIAL_DIMS');
    expect(error?.details).toEqual({ layers: ['layers.0', 'layers.1', 'layers.2'] });
    expect(error?.message).toMatch(/^3 self-attention layer\(s\) have tokens that are not the flattening of a \[B, C, H, W\] tensor/);
    expect(error?.message).toMatch(/layer layers.2 \(reads \/m\/text_model\/encoder\/layers.2\/layer_norm1\/LayerNormalization_output_0\)/);
    expect(m.graph.nodes.length).toBe(nodes);
    expect(m.graph.nodes.some((n) => n.opType === 'PyramidConvBlock')).toBe(false);
  });

  it('the CLI exits 1 and writes nothing', async () => {
    const out = path.join(tmp.dir, 'refused.onnx');
    const r = await runCli('convert', model, '--weights', weights, '-o', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_SPATIAL_DIMS: 3 self-attention layer\(s\)/);
    expect(r.err).toMatch(/pass --allow-partial/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--allow-partial keeps every layer’s attention with a warning per layer, and the model still runs', async () => {
    const out = path.join(tmp.dir, 'kept.onnx');
    const r = await runCli('convert', model, '--weights', weights, '-o', out, '--allow-partial');
    expect(r.code).toBe(0);
    for (const l of encoder.blocks) expect(r.err).toContain(`warning: layer ${l} keeps its self-attention: its /m/text_model/encoder/${l}/layer_norm1/LayerNormalization_output_0 tokens have no 2-D layout (DELTAC_E_SPATIAL_DIMS)`);
    expect(r.out).toMatch(/self-attention +0 converted, 3 kept \(no 2-D layout\); cross-attention kept: 0/);
    expect(r.out).not.toMatch(/no weights/);
    expect(r.out).toMatch(/check\s+passed/);
    expect(fs.existsSync(out)).toBe(true);
  });

  it('the summary says why each group was kept: a layer without weights apart from those without a 2-D layout', async () => {
    const partial = path.join(tmp.dir, 'partial.safetensors');
    writeSafetensors(partial, deltaCheckpointTensors(encoder.blocks.slice(1).map((b) => ({ block: b, channels: 32, kernel: 3 }))));
    const r = await runCli('convert', model, '--weights', partial, '-o', path.join(tmp.dir, 'mixed.onnx'), '--allow-partial', '--no-check');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/self-attention +0 converted, 1 kept \(no weights in the checkpoint\), 2 kept \(no 2-D layout\); cross-attention kept: 0/);
  });

  it('image tokens joined with text tokens (joint attention) have no H, W either: refused, not converted with the image\'s', () => {
    const m = buildTextEncoder(2, 32, 2, true).model;
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as DeltacError;
      }
    };
    const error = thrown(() => convert(m, { weights }));
    expect(error?.code).toBe('DELTAC_E_SPATIAL_DIMS');
    expect(error?.details).toEqual({ layers: ['layers.0', 'layers.1'] });
    const kept = convert(buildTextEncoder(2, 32, 2, true).model, { weights, allowPartial: true });
    expect(kept.layers.map((l) => [l.id, l.status, l.reason])).toEqual(
      ['layers.0', 'layers.1'].map((id) => [id, 'kept', 'no 2-D layout: its tokens are not the flattening of a [B, C, H, W] tensor (--allow-partial)']),
    );
  });

  it("the README's DELTAC_E_SPATIAL_DIMS row says --allow-partial keeps layers that are not image tokens", () => {
    const row = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8').split('\n').find((l) => l.startsWith('| `DELTAC_E_SPATIAL_DIMS` |'));
    const whatToDo = row?.split('|')[3] ?? '';
    expect(whatToDo).toMatch(/not image tokens \(e\.g\. a text encoder/);
    expect(whatToDo).toMatch(/`--allow-partial` keeps/);
  });
});
