/**
 * `emitKernels`: writes the fused pyramid-conv kernels of a converted model
 * (SPEC.md §6). For every distinct configuration of its `ai.deltac.PyramidConvBlock`
 * nodes: `<id>.cu` (CUDA), `<id>.wgsl` and `<id>.f16.wgsl` (WebGPU); for the model:
 * `deltac_kernels.h` (C prototypes), `deltac-kernels.ts` (WebGPU host module),
 * `gate-weights.bin` (every layer's gate weights, float32) and `kernels.json`; and for
 * the whole ΔConvBlock: `<id>.block.cu` per configuration and `block-weights.bin` (every
 * layer's weights in the block layout of kernel-plan.ts, float32); and `README.md`, which
 * names the operator the kernels implement (op-contract.ts), unless the folder has one.
 * Every file is written atomically (temporary file + rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../ir/errors.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import { isPyramidConvBlock, pyramidConvConfig, type PyramidConvConfig } from '../passes/delta-conv/op.js';
import { blockDtype, functionOverload } from '../passes/delta-conv/pyramid-conv-function.js';
import { cudaHeader } from './cuda/cuda-header.js';
import { cudaSource } from './cuda/cuda-kernel.js';
import { webgpuHostModule, type HostLayer } from './host/webgpu-host.js';
import type { BlockWeightOffsets } from './host/webgpu-runtime.js';
import { blockWeightLayout, kernelPlan, packBlockWeights, type BlockWeightSlot } from './kernel-plan.js';
import { cudaBlockFile, cudaBlockSource } from './cuda/cuda-block.js';
import { deltaConvBlockFromNode } from '../reference/delta-conv-block.js';
import { wgslKernelInfo, wgslSource } from './wgsl/wgsl-kernel.js';
import { type OpContract, kernelsReadme, opContract } from './op-contract.js';

export interface EmitKernelsOptions {
  /** Name used in generated comments (default: the model file's stem). */
  modelName?: string;
  /** File name of the TypeScript host module (default `deltac-kernels.ts`). */
  hostModule?: string;
}

/** One configuration's entry in kernels.json. */
export interface KernelEntry {
  id: string;
  /** C entry point. */
  entry: string;
  cuda: string;
  /** WGSL module with f32 storage (runs everywhere). */
  wgsl: string;
  /** WGSL module with f16 storage (needs "shader-f16"). */
  wgsl_f16: string;
  /** Ci */
  channels: number;
  kernel: number;
  scales: number[];
  gate: 'simple' | 'sigmoid';
  dtype: 'float32' | 'float16';
  /** C entry point of the whole block. */
  block_entry: string;
  block_cuda: string;
  /** The whole block's weight buffer: where each checkpoint tensor lies (in elements). */
  block_weights: { elements: number; tensors: BlockWeightSlot[] };
}

export interface KernelsManifest {
  /** The ONNX operator the kernels implement (domain, op type, input order, attributes). */
  op: OpContract;
  kernels: KernelEntry[];
  /** module path → configuration id */
  layers: Record<string, string>;
  gate_weights: { file: string; dtype: 'float32'; layers: Record<string, { offset: number; length: number }> };
  /** Every layer's whole-block weights (layout of its configuration's block_weights). */
  block_weights: { file: string; dtype: 'float32'; layers: Record<string, { offset: number; length: number }> };
}

export interface EmitKernelsResult {
  outDir: string;
  manifest: KernelsManifest;
  /** Absolute paths of the files written. */
  files: string[];
}

export const MANIFEST_FILE = 'kernels.json';
export const CUDA_HEADER_FILE = 'deltac_kernels.h';
export const GATE_WEIGHTS_FILE = 'gate-weights.bin';
export const BLOCK_WEIGHTS_FILE = 'block-weights.bin';
export const README_FILE = 'README.md';

/** A converted layer found in the model. */
export interface PyramidLayer {
  name: string;
  node: Node;
  config: PyramidConvConfig;
  id: string;
}

/** Every PyramidConvBlock of the model (subgraphs included), named by module path. */
export function pyramidLayers(model: Model): PyramidLayer[] {
  const layers: PyramidLayer[] = [];
  const seen = new Map<string, number>();
  for (const node of model.graph.allNodes()) {
    if (!isPyramidConvBlock(node)) continue;
    const config = pyramidConvConfig(node);
    // --emit fused names each node's configuration in its overload: it must be the one its weights and attributes say
    const expected = functionOverload(config, blockDtype(node));
    if (node.overload && node.overload !== expected) {
      throw new DeltacError(
        'DELTAC_E_UNSUPPORTED_MODEL',
        `PyramidConvBlock "${node.name}" has overload "${node.overload}", but its weights and attributes make it "${expected}"; the model was edited after conversion: convert it again`,
      );
    }
    const base = node.getString('module_path', '') || node.name || `pyramid_conv_${layers.length}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    layers.push({ name: n === 1 ? base : `${base}#${n}`, node, config, id: kernelPlan(config).id });
  }
  return layers;
}

export function emitKernels(model: Model, outDir: string, options: EmitKernelsOptions = {}): EmitKernelsResult {
  const layers = pyramidLayers(model);
  if (!layers.length) {
    throw new DeltacError(
      'DELTAC_E_UNSUPPORTED_MODEL',
      'the model has no ai.deltac.PyramidConvBlock node: emit kernels for a model converted by `deltac convert` (with --emit fused), or pass --emit-kernels to convert',
    );
  }
  const modelName = options.modelName ?? (model.sourcePath ? path.basename(model.sourcePath, '.onnx') : 'model');
  const configs = new Map<string, PyramidConvConfig>();
  for (const l of layers) if (!configs.has(l.id)) configs.set(l.id, l.config);

  const files = new Map<string, string | Uint8Array>();
  const kernels: KernelEntry[] = [];
  for (const [id, config] of configs) {
    const plan = kernelPlan(config);
    const layout = blockWeightLayout(config);
    const entry: KernelEntry = {
      id,
      entry: plan.entry,
      cuda: `${id}.cu`,
      wgsl: `${id}.wgsl`,
      wgsl_f16: `${id}.f16.wgsl`,
      channels: config.inner,
      kernel: config.kernel,
      scales: [...config.scales],
      gate: config.gate,
      dtype: config.dtype,
      block_entry: plan.blockEntry,
      block_cuda: cudaBlockFile(plan),
      block_weights: { elements: layout.elements, tensors: layout.slots },
    };
    kernels.push(entry);
    files.set(entry.cuda, cudaSource(config));
    files.set(entry.block_cuda, cudaBlockSource(config));
    files.set(entry.wgsl, wgslSource(config, 'f32'));
    files.set(entry.wgsl_f16, wgslSource(config, 'f16'));
  }
  files.set(CUDA_HEADER_FILE, cudaHeader([...configs.values()]));

  // every layer's gate weights and whole-block weights, float32, in layer order
  const gateArrays: Float32Array[] = [];
  const blockArrays: Float32Array[] = [];
  const hostLayers: HostLayer[] = [];
  let gateOffset = 0;
  let blockOffset = 0;
  for (const l of layers) {
    // DELTAC_E_UNSUPPORTED_MODEL when a weight is not a constant, DELTAC_E_WEIGHT_SHAPE when its size is off
    const { weights } = deltaConvBlockFromNode(l.node);
    const block = packBlockWeights(l.config, weights, l.name);
    gateArrays.push(weights.gateWeights);
    blockArrays.push(block);
    hostLayers.push({ name: l.name, kernel: l.id, weightOffset: gateOffset, weightLength: weights.gateWeights.length, blockOffset, blockLength: block.length });
    gateOffset += weights.gateWeights.length;
    blockOffset += block.length;
  }
  files.set(GATE_WEIGHTS_FILE, float32Bytes(gateArrays));
  files.set(BLOCK_WEIGHTS_FILE, float32Bytes(blockArrays));

  files.set(
    options.hostModule ?? 'deltac-kernels.ts',
    webgpuHostModule(
      [...configs.values()].map((config) => ({
        info: wgslKernelInfo(config),
        dtype: config.dtype,
        wgsl: { f32: files.get(`${kernelPlan(config).id}.wgsl`) as string, f16: files.get(`${kernelPlan(config).id}.f16.wgsl`) as string },
        channels: config.channels,
        block: blockOffsets(config),
      })),
      hostLayers,
      modelName,
    ),
  );

  const manifest: KernelsManifest = {
    op: opContract(),
    kernels,
    layers: Object.fromEntries(layers.map((l) => [l.name, l.id])),
    gate_weights: {
      file: GATE_WEIGHTS_FILE,
      dtype: 'float32',
      layers: Object.fromEntries(hostLayers.map((l) => [l.name, { offset: l.weightOffset, length: l.weightLength }])),
    },
    block_weights: {
      file: BLOCK_WEIGHTS_FILE,
      dtype: 'float32',
      layers: Object.fromEntries(hostLayers.map((l) => [l.name, { offset: l.blockOffset, length: l.blockLength }])),
    },
  };
  files.set(MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n');

  const dir = path.resolve(outDir);
  // A README the user wrote (or kept) in the folder stays; ours is written only where there is none.
  const readme = path.join(dir, README_FILE);
  if (!fs.existsSync(readme) || isOurReadme(readme)) {
    const readmeConfigs = [...configs].map(([id, c]) => ({ id, channels: c.channels, inner: c.inner, kernel: c.kernel, scales: c.scales, gate: c.gate, dtype: c.dtype, layers: layers.filter((l) => l.id === id).length }));
    files.set(README_FILE, kernelsReadme(modelName, readmeConfigs));
  }
  return { outDir: dir, manifest, files: writeFilesAtomically(dir, files) };
}

/** A README.md that deltac generated (it says so in its first lines), which a new run may replace. */
function isOurReadme(file: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').slice(0, 512).includes('Generated by deltac');
  } catch {
    return false;
  }
}

/** The block layout as the WebGPU runtime names it. */
function blockOffsets(config: PyramidConvConfig): BlockWeightOffsets {
  const { slots, elements } = blockWeightLayout(config);
  const at = (name: string) => slots.find((s) => s.name === name)!.offset;
  return {
    upWeight: at('conv_up.weight'),
    upBias: at('conv_up.bias'),
    gates: at('gates.conv_spatial.weight'),
    outWeight: at('conv_out.weight'),
    outBias: at('conv_out.bias'),
    poolWeight: at('conv_pool.weight'),
    poolBias: at('conv_pool.bias'),
    elements,
  };
}

/** Float32 arrays, concatenated, as little-endian bytes. */
function float32Bytes(arrays: Float32Array[]): Uint8Array {
  const bytes = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0) * 4);
  const dv = new DataView(bytes.buffer);
  let at = 0;
  for (const w of arrays) for (const v of w) dv.setFloat32(4 * at++, v, true);
  return bytes;
}

/** Writes every file to a temporary name first, then renames them all; nothing partial stays on failure. */
function writeFilesAtomically(dir: string, files: Map<string, string | Uint8Array>): string[] {
  const temps: [string, string][] = [];
  try {
    fs.mkdirSync(dir, { recursive: true });
    const tag = `${process.pid}-${Date.now().toString(36)}`;
    for (const [name, content] of files) {
      const final = path.join(dir, name);
      const temp = `${final}.tmp-${tag}`;
      fs.writeFileSync(temp, content);
      temps.push([temp, final]);
    }
    for (const [temp, final] of temps) fs.renameSync(temp, final);
    return temps.map(([, final]) => final);
  } catch (e) {
    for (const [temp] of temps) fs.rmSync(temp, { force: true });
    throw new DeltacError('DELTAC_E_WRITE', `could not write kernels to "${dir}": ${(e as Error).message}`, undefined, { cause: e });
  }
}
