import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ts, Project } from 'ts-morph';
import { afterAll, describe, expect, it } from 'vitest';
import { emitKernels } from '../../src/codegen/emit.js';
import { Model } from '../../src/ir/model.js';
import { fixtureLayers, pyramidModel } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';

/** Every folder this file writes lies in here, removed after the run. */
const TMP = makeTempDir('deltac-codegen-');
afterAll(TMP.cleanup);

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('emitKernels', () => {
  it('groups sd15-mini layers by configuration and writes kernels.json as SPEC.md §6 says', () => {
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-emit-'));
    const layers = fixtureLayers('sd15-mini');
    const r = emitKernels(pyramidModel(layers), dir, { modelName: 'sd15-mini' });
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'kernels.json'), 'utf8'));
    expect(manifest).toEqual(r.manifest);
    expect(manifest.kernels.map((k: { id: string }) => k.id)).toEqual([
      'c32_ci16_k9_s1_0p5_simple_f32',
      'c64_ci32_k7_s1_0p5_simple_f32',
      'c64_ci32_k5_s1_0p5_simple_f32',
    ]);
    expect(manifest.kernels[1]).toEqual({
      id: 'c64_ci32_k7_s1_0p5_simple_f32',
      entry: 'deltac_pyramid_conv_c64_ci32_k7_s1_0p5_simple_f32',
      cuda: 'c64_ci32_k7_s1_0p5_simple_f32.cu',
      wgsl: 'c64_ci32_k7_s1_0p5_simple_f32.wgsl',
      wgsl_f16: 'c64_ci32_k7_s1_0p5_simple_f32.f16.wgsl',
      channels: 32,
      kernel: 7,
      scales: [1, 0.5],
      gate: 'simple',
      dtype: 'float32',
      block_entry: 'deltac_block_c64_ci32_k7_s1_0p5_simple_f32',
      block_cuda: 'c64_ci32_k7_s1_0p5_simple_f32.block.cu',
      block_weights: {
        elements: 2048 + 64 + 3136 + 2048 + 64 + 4096 + 64,
        tensors: [
          { name: 'conv_up.weight', shape: [32, 64], offset: 0 },
          { name: 'conv_up.bias', shape: [32], offset: 2048 },
          { name: 'gates.conv_spatial.weight', shape: [2, 7, 7, 32], offset: 2112 },
          { name: 'conv_out.weight', shape: [64, 32], offset: 5248 },
          { name: 'conv_out.bias', shape: [64], offset: 7296 },
          { name: 'conv_pool.weight', shape: [64, 64], offset: 7360 },
          { name: 'conv_pool.bias', shape: [64], offset: 11456 },
        ],
      },
    });
    expect(Object.keys(manifest.layers)).toHaveLength(16);
    expect(manifest.layers['mid_block.attentions.0.transformer_blocks.0']).toBe('c64_ci32_k5_s1_0p5_simple_f32');
    expect(manifest.layers['up_blocks.3.attentions.2.transformer_blocks.0']).toBe('c32_ci16_k9_s1_0p5_simple_f32');
    // gate weights: every layer, float32, in layer order
    const bin = fs.readFileSync(path.join(dir, 'gate-weights.bin'));
    const total = layers.reduce((a, l) => a + l.weights.gateWeights.length, 0);
    expect(bin.byteLength).toBe(total * 4);
    const mid = manifest.gate_weights.layers['mid_block.attentions.0.transformer_blocks.0'];
    const midLayer = layers.find((l) => l.path.startsWith('mid_block'))!;
    expect(mid.length).toBe(2 * 5 * 5 * 32);
    expect(bin.readFloatLE(4 * (mid.offset + 7))).toBe(midLayer.weights.gateWeights[7]);
    // whole-block weights: every layer in the block layout of its configuration, float32
    const blockBin = fs.readFileSync(path.join(dir, 'block-weights.bin'));
    const midBlock = manifest.block_weights.layers['mid_block.attentions.0.transformer_blocks.0'];
    const midTensors = manifest.kernels[2].block_weights.tensors;
    expect(midBlock.length).toBe(manifest.kernels[2].block_weights.elements);
    const poolAt = midBlock.offset + midTensors.find((t: { name: string }) => t.name === 'conv_pool.bias').offset;
    expect(blockBin.readFloatLE(4 * (poolAt + 5))).toBe(midLayer.weights.poolBias[5]);
    expect(blockBin.byteLength).toBe(4 * Object.values(manifest.block_weights.layers).reduce((a: number, l) => a + (l as { length: number }).length, 0));
    // every file listed exists, nothing temporary is left
    for (const f of r.files) expect(fs.existsSync(f)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'deltac_kernels.h'), 'utf8')).toContain(
      'int deltac_pyramid_conv_c64_ci32_k5_s1_0p5_simple_f32(const void* u, const void* weights, void* out, int batch, int height, int width, void* stream);',
    );
  });

  it('refuses a model without PyramidConvBlock nodes with a stable code', () => {
    expect(() => emitKernels(new Model(), fs.mkdtempSync(path.join(TMP.dir, 'deltac-emit-')))).toThrow(/PyramidConvBlock/);
    try {
      emitKernels(new Model(), os.tmpdir());
    } catch (e) {
      expect((e as { code: string }).code).toBe('DELTAC_E_UNSUPPORTED_MODEL');
    }
  });

  it('refuses more gates than the kernels support, before generating any code', () => {
    const model = pyramidModel(fixtureLayers('pixart-mini').slice(0, 1));
    const node = model.graph.nodes.find((n) => n.domain === 'ai.deltac')!;
    node.attributes.set('scales', { type: 'floats', value: Array.from({ length: 17 }, () => 1) });
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-emit-'));
    let code = '';
    try {
      emitKernels(model, dir);
    } catch (e) {
      code = (e as { code: string }).code;
      expect((e as Error).message).toMatch(/17 gates; the kernels support at most 16/);
    }
    expect(code).toBe('DELTAC_E_UNSUPPORTED_MODEL');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('generates a host module that type-checks under strict TypeScript (DOM + WebGPU types)', () => {
    const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-host-'));
    emitKernels(pyramidModel([...fixtureLayers('pixart-mini'), ...fixtureLayers('sd15-mini').slice(6, 8)]), dir);
    const file = path.join(dir, 'deltac-kernels.ts');
    const project = new Project({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
        typeRoots: [path.join(ROOT, 'node_modules')],
        types: [],
        // @webgpu/types and the bundled TypeScript's lib.dom may disagree; our file must be clean.
        skipLibCheck: true,
      },
    });
    project.addSourceFileAtPath(file);
    const diagnostics = project.getPreEmitDiagnostics().map((d) => `${d.getSourceFile()?.getBaseName()}:${d.getLineNumber()} ${ts.flattenDiagnosticMessageText(d.getMessageText() as string, '\n')}`);
    expect(diagnostics).toEqual([]);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toMatch(/^\/\/\/ <reference types="@webgpu\/types" \/>\n\/\*\*\n \* Generated by deltac/);
    expect(text).toContain('export type LayerName = "transformer_blocks.0" | "transformer_blocks.1"');
    expect(text).toContain('export async function createDeltacKernels(');
  });
});
