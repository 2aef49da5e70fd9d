/// <reference lib="dom" />
/// <reference types="@webgpu/types" />
/**
 * The page script (bundled by build.ts into examples/out/web/main.js):
 *  1. runs the original and the converted pixart-mini in onnxruntime-web — WebGPU
 *     execution provider when the browser gives an adapter, WebAssembly otherwise
 *     (`?ep=wasm` forces it) — and compares each output with PyTorch's (.npy);
 *  2. runs every converted layer's generated WGSL kernel through the generated host
 *     module (kernels/deltac-kernels.js) on random U and compares it with the
 *     TypeScript reference (src/reference);
 *  3. runs every converted layer's whole ΔConvBlock (conv_up, pyramid, conv_out, pool)
 *     through the host module's `runBlock` on random tokens and compares it with the
 *     reference of the whole block, whose weights come unpacked from the model
 *     (block-reference.bin), not from the kernels' block-weights.bin.
 * The results land in the tables and in `window.deltacResults`; the root element's
 * `data-status` turns to "done" (or "error").
 */
import * as ort from 'onnxruntime-web';
import { deltaConvBlockReference, type DeltaConvBlockWeights } from '../../src/reference/delta-conv-block.js';
import { pyramidConvReference } from '../../src/reference/pyramid-conv.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { parseNpy } from '../../src/runtime/npy.js';
import { seededRandom } from '../../src/runtime/seeded-random.js';
import type { WebLayer } from './build.js';

/** Tolerances: SPEC.md §5 for a converted fp32 model; the kernel tests' bound for the WGSL kernels. */
const MODEL_TOLERANCE = 1e-4;
const KERNEL_TOLERANCE = 1e-5;
const TIMED_RUNS = 5;
/** Batch of the whole-block check: more than one, so the per-image pool term is checked too. */
const BLOCK_BATCH = 2;

export interface ModelResult {
  model: 'original' | 'converted';
  provider: string;
  reference: string;
  rel: number;
  firstMs: number;
  medianMs: number;
}

export interface KernelResult {
  layer: string;
  shader: 'f32' | 'f16';
  rel: number;
  ms: number;
}

export interface PageResults {
  status: 'done' | 'error';
  error?: string;
  /** 'webgpu' when navigator.gpu gave an adapter, else 'wasm'. */
  backend: 'webgpu' | 'wasm';
  adapter?: { vendor: string; architecture: string; description: string; shaderF16: boolean };
  models: ModelResult[];
  /** Empty when the browser has no WebGPU (kernelsSkipped says why). */
  kernels: KernelResult[];
  /** The whole ΔConvBlock of every layer (runBlock); empty without WebGPU. */
  blocks: KernelResult[];
  kernelsSkipped?: string;
}

interface HostModule {
  LAYERS: Record<string, { kernel: string; weightOffset: number; weightLength: number }>;
  createDeltacKernels(device: GPUDevice, weights: ArrayBufferView, options?: { blockWeights?: ArrayBufferView }): Promise<{
    runLayer(name: string, input: { data: Float32Array; batch: number; height: number; width: number }): Promise<Float32Array>;
    runBlock(name: string, input: { data: Float32Array; batch: number; height: number; width: number }): Promise<Float32Array>;
    kernel(name: string): { elem: 'f32' | 'f16' };
    destroy(): void;
  }>;
}

declare global {
  interface Window {
    deltacResults?: PageResults;
  }
}

/** max|a − b| / max|b|, the measure SPEC.md §5 states tolerances in (a NaN counts as ∞). */
const relError = (actual: Float32Array, expected: Float32Array) => compareArrays(actual, expected).rel;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function fetchNpy(name: string) {
  return parseNpy(await fetchBytes(`/data/${name}`), name);
}

/** Seeded values in [-1, 1), so every run of the page checks the same U. */
function randomU(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => random() * 2 - 1);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
const verdict = (rel: number, tol: number) => (rel <= tol ? `<span class="ok">✓ ≤ ${tol}</span>` : `<span class="bad">✗ > ${tol}</span>`);

function addRow(table: string, cells: string[]): void {
  const tr = document.createElement('tr');
  tr.innerHTML = cells.map((c, i) => `<td${/^[\d.e+−-]+$/.test(c) && i > 0 ? ' class="num"' : ''}>${c}</td>`).join('');
  document.querySelector(`#${table} tbody`)!.append(tr);
}

function status(line: string): void {
  document.getElementById('status')!.textContent = line;
}

async function runModel(model: ModelResult['model'], provider: 'webgpu' | 'wasm'): Promise<ModelResult> {
  const url = model === 'original' ? '/models/original.onnx' : '/models/converted.onnx';
  status(`loading ${model} model on ${provider}…`);
  const session = await ort.InferenceSession.create(await fetchBytes(url), { executionProviders: [provider] });
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    const arr = await fetchNpy(`in0.${name}.npy`);
    feeds[name] = new ort.Tensor('float32', arr.data as Float32Array, arr.shape);
  }
  const reference = model === 'original' ? 'out0.attn.npy' : 'out0.delta.npy';
  const expected = (await fetchNpy(reference)).data as Float32Array;
  const times: number[] = [];
  let rel = Infinity;
  for (let i = 0; i <= TIMED_RUNS; i++) {
    status(`running ${model} model on ${provider} (${i + 1}/${TIMED_RUNS + 1})…`);
    const t0 = performance.now();
    const out = (await session.run(feeds))[session.outputNames[0]!]!;
    const data = (await out.getData()) as Float32Array;
    times.push(performance.now() - t0);
    if (i === 0) rel = relError(data, expected);
  }
  await session.release();
  return { model, provider, reference, rel, firstMs: times[0]!, medianMs: median(times.slice(1)) };
}

const floats = (bytes: Uint8Array) => new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);

/** A layer's whole-block weights, as read from the model by build.ts (block-reference.bin). */
function blockWeightsOf(l: WebLayer, all: Float32Array): DeltaConvBlockWeights {
  const entries = Object.entries(l.blockReference).map(([key, [offset, length]]) => [key, all.subarray(offset, offset + length)]);
  return Object.fromEntries(entries) as DeltaConvBlockWeights;
}

async function runKernels(device: GPUDevice, shaderF16: boolean): Promise<Pick<PageResults, 'kernels' | 'blocks'>> {
  status('compiling the generated WGSL kernels…');
  const layers = JSON.parse(new TextDecoder().decode(await fetchBytes('/layers.json'))) as WebLayer[];
  const weightsBytes = await fetchBytes('/kernels/gate-weights.bin');
  const allWeights = floats(weightsBytes);
  const blockWeights = await fetchBytes('/kernels/block-weights.bin');
  const referenceWeights = floats(await fetchBytes('/block-reference.bin'));
  const hostUrl = '/kernels/deltac-kernels.js';
  const host = (await import(hostUrl)) as HostModule;
  const kernels = await host.createDeltacKernels(device, weightsBytes, { blockWeights });
  const results: KernelResult[] = [];
  const blocks: KernelResult[] = [];
  try {
    for (const [i, l] of layers.entries()) {
      status(`running the kernel of ${l.name}…`);
      const { weightOffset, weightLength } = host.LAYERS[l.name]!;
      const ext = { batch: 1, height: l.height, width: l.width };
      const u = randomU(l.height * l.width * l.inner, 7 + i);
      const t0 = performance.now();
      const g = await kernels.runLayer(l.name, { data: u, ...ext });
      const ms = performance.now() - t0;
      const expected = pyramidConvReference(u, allWeights.subarray(weightOffset, weightOffset + weightLength), ext, l);
      const shader = kernels.kernel(l.name).elem;
      const rel = relError(g, expected);
      results.push({ layer: l.name, shader, rel, ms });
      addRow('kernels', [l.name, `${l.height}×${l.width}×${l.inner}`, `${l.kernel}, (${l.scales.join(', ')}), ${l.gate}`, `${shader}${shaderF16 ? '' : ' (no shader-f16)'}`, fmt(rel), ms.toFixed(1), verdict(rel, KERNEL_TOLERANCE)]);
    }
    for (const [i, l] of layers.entries()) {
      status(`running the whole ΔConvBlock of ${l.name}…`);
      const ext = { batch: BLOCK_BATCH, height: l.height, width: l.width };
      const x = randomU(BLOCK_BATCH * l.height * l.width * l.channels, 101 + i);
      const t0 = performance.now();
      const y = await kernels.runBlock(l.name, { data: x, ...ext });
      const ms = performance.now() - t0;
      const expected = deltaConvBlockReference(x, blockWeightsOf(l, referenceWeights), ext, l);
      const shader = kernels.kernel(l.name).elem;
      const rel = relError(y, expected);
      blocks.push({ layer: l.name, shader, rel, ms });
      addRow('blocks', [l.name, `${BLOCK_BATCH}×${l.height}·${l.width}×${l.channels}`, `${l.channels} → ${l.inner} → ${(l.scales.length * l.inner) / 2} → ${l.channels}`, shader, fmt(rel), ms.toFixed(1), verdict(rel, KERNEL_TOLERANCE)]);
    }
  } finally {
    kernels.destroy();
  }
  return { kernels: results, blocks };
}

async function main(): Promise<PageResults> {
  ort.env.wasm.wasmPaths = '/ort/';
  const forced = new URLSearchParams(location.search).get('ep');
  const adapter = forced === 'wasm' || !navigator.gpu ? null : await navigator.gpu.requestAdapter();
  const backend = adapter ? 'webgpu' : 'wasm';
  const results: PageResults = { status: 'done', backend, models: [], kernels: [], blocks: [] };
  if (adapter) {
    const { vendor, architecture, description } = adapter.info;
    results.adapter = { vendor, architecture, description, shaderF16: adapter.features.has('shader-f16') };
  }
  document.getElementById('backend')!.innerHTML = adapter
    ? `Backend: <b>WebGPU</b> — adapter “${[results.adapter!.vendor, results.adapter!.architecture, results.adapter!.description].filter(Boolean).join(' / ')}”${results.adapter!.shaderF16 ? ', shader-f16' : ', no shader-f16 (f32 kernels)'}`
    : `Backend: <b>WebAssembly</b> (${forced === 'wasm' ? 'forced by ?ep=wasm' : 'this browser offers no WebGPU adapter'})`;

  for (const model of ['original', 'converted'] as const) {
    const r = await runModel(model, backend);
    results.models.push(r);
    addRow('models', [model, r.provider, r.reference, fmt(r.rel), r.firstMs.toFixed(1), r.medianMs.toFixed(1), verdict(r.rel, MODEL_TOLERANCE)]);
  }

  if (adapter) {
    const shaderF16 = results.adapter!.shaderF16;
    const device = await adapter.requestDevice({ requiredFeatures: shaderF16 ? ['shader-f16'] : [] });
    Object.assign(results, await runKernels(device, shaderF16));
    device.destroy();
  } else {
    results.kernelsSkipped = 'no WebGPU adapter: the WGSL kernels need WebGPU';
    for (const table of ['kernels', 'blocks']) document.querySelector(`#${table} tbody`)!.innerHTML = `<tr><td colspan="7">${results.kernelsSkipped}</td></tr>`;
  }
  return results;
}

main()
  .then((results) => {
    window.deltacResults = results;
    status(`done (${results.backend})`);
    document.documentElement.dataset.status = 'done';
  })
  .catch((err: unknown) => {
    const message = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
    window.deltacResults = { status: 'error', error: message, backend: 'wasm', models: [], kernels: [], blocks: [] };
    status(`error: ${message}`);
    document.documentElement.dataset.status = 'error';
  });
