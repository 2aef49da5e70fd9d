/**
 * `npm run bench:kernels`: the generated fused pyramid-conv kernel against an
 * unfused WGSL baseline (pool, conv, gate, resize as separate dispatches with
 * full-resolution intermediates in storage buffers), both on the same WebGPU device
 * (Mesa lavapipe on CI) in one process. Median of several runs each; both results are
 * checked against the CPU reference first. Writes bench/results/kernels.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { PyramidConvKernel } from '../src/codegen/host/webgpu-runtime.js';
import { wgslKernelInfo, wgslSource } from '../src/codegen/wgsl/wgsl-kernel.js';
import type { PyramidConvConfig } from '../src/passes/delta-conv/op.js';
import { pyramidConvReference } from '../src/reference/pyramid-conv.js';
import { UnfusedPyramidConv } from './kernels/unfused.js';
import { compareArrays } from '../src/runtime/compare.js';

Object.assign(globalThis, globals);

const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
const SHAPES: { name: string; config: PyramidConvConfig; batch: number; height: number; width: number }[] = [
  { name: 'sd-like 64×64, Ci=64, K=9, simple', config: { channels: 128, inner: 64, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype: 'float32' }, batch: 1, height: 64, width: 64 },
  { name: 'pixart-like 33×25, Ci=32, K=13, sigmoid', config: { channels: 64, inner: 32, kernel: 13, scales: [1, 0.5], gate: 'sigmoid', dtype: 'float32' }, batch: 2, height: 33, width: 25 },
];

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function median(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
  const once = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await once();
  await once();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter (install Mesa lavapipe)');
const device = await adapter.requestDevice();
const info = adapter.info;
const results = [];
console.log(`WebGPU adapter: ${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim());
for (const s of SHAPES) {
  const e = { batch: s.batch, height: s.height, width: s.width };
  const c = s.config;
  const u = random(e.batch * e.height * e.width * c.inner, 1);
  const w = random(c.scales.length * c.kernel ** 2 * c.inner, 2).map((v) => v / c.kernel);
  const ref = pyramidConvReference(u, w, e, c);

  const fused = await PyramidConvKernel.create(device, wgslKernelInfo(c), wgslSource(c, 'f32'), 'f32');
  const fb = fused.createBuffers(e);
  device.queue.writeBuffer(fb.u, 0, fused.encodeData(u));
  device.queue.writeBuffer(fb.weights, 0, fused.encodeData(w));
  device.queue.writeBuffer(fb.params, 0, fused.params(e));
  const group = fused.bindGroup(fb);
  const unfused = await UnfusedPyramidConv.create(device, c, e, fb.u, fb.weights);

  const run = async (encode: (p: GPUComputePassEncoder) => void, out: GPUBuffer) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    return fused.readBack(out, ref.length);
  };
  const errFused = compareArrays(await run((p) => fused.encode(p, group, e), fb.out), ref).rel;
  const errUnfused = compareArrays(await run((p) => unfused.encode(p), unfused.out), ref).rel;
  if (!(errFused < 1e-5 && errUnfused < 1e-5)) throw new Error(`${s.name}: results differ from the reference (fused ${errFused}, unfused ${errUnfused})`);

  const tFused = await median(device, (p) => fused.encode(p, group, e));
  const tUnfused = await median(device, (p) => unfused.encode(p));
  const row = {
    shape: s.name,
    batch: e.batch,
    height: e.height,
    width: e.width,
    fused_ms: +tFused.toFixed(3),
    unfused_ms: +tUnfused.toFixed(3),
    speedup: +(tUnfused / tFused).toFixed(2),
    fused_dispatches: 1 + fused.info.lowEntries.length,
    unfused_dispatches: unfused.dispatches,
    max_rel_err: { fused: errFused, unfused: errUnfused },
  };
  results.push(row);
  console.log(`${s.name}, batch ${e.batch}: fused ${row.fused_ms} ms (${row.fused_dispatches} dispatches), unfused ${row.unfused_ms} ms (${row.unfused_dispatches} dispatches) → fused is ${row.speedup}× faster`);
  for (const b of Object.values(fb)) b.destroy();
  unfused.destroy();
}
device.destroy();

const outFile = path.resolve(import.meta.dirname, 'results', 'kernels.json');
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), adapter: { vendor: info.vendor, architecture: info.architecture, description: info.description }, runs: RUNS, results }, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), outFile)}`);
