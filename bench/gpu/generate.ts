/**
 * Writes the CUDA the GPU check needs (SD1.5 and PixArt-Σ layer shapes, fp16 and fp32):
 * per configuration the pyramid-conv file `<id>.cu` and the whole-block file
 * `<id>.block.cu`, plus deltac_kernels.h and a manifest, for bench/gpu/run_gpu_check.py:
 *
 *   npx tsx bench/gpu/generate.ts bench/gpu/out [--tiling th=16,tw=16,r=8]
 */
import fs from 'node:fs';
import path from 'node:path';
import { cudaBlockFile, cudaBlockSource } from '../../src/codegen/cuda/cuda-block.js';
import { cudaHeader } from '../../src/codegen/cuda/cuda-header.js';
import { cudaSource } from '../../src/codegen/cuda/cuda-kernel.js';
import { blockWeightLayout, kernelPlan } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';

const outDir = path.resolve(process.argv[2] ?? 'bench/gpu/out');
const tilingArg = process.argv.indexOf('--tiling');
const tiling = tilingArg > 0 ? Object.fromEntries(process.argv[tilingArg + 1]!.split(',').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])])) : {};
fs.mkdirSync(outDir, { recursive: true });

const configs: PyramidConvConfig[] = [];
for (const dtype of ['float16', 'float32'] as const) {
  for (const c of [320, 640, 1280]) configs.push({ channels: c, inner: c / 2, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype });
  configs.push({ channels: 1152, inner: 576, kernel: 13, scales: [1, 0.5], gate: 'sigmoid', dtype });
}

const kernels = configs.map((config) => {
  const plan = kernelPlan(config);
  fs.writeFileSync(path.join(outDir, `${plan.id}.cu`), cudaSource(config, tiling));
  fs.writeFileSync(path.join(outDir, cudaBlockFile(plan)), cudaBlockSource(config, tiling));
  const layout = blockWeightLayout(config);
  return {
    id: plan.id,
    entry: plan.entry,
    cuda: `${plan.id}.cu`,
    block_entry: plan.blockEntry,
    block_cuda: cudaBlockFile(plan),
    block_weights: { elements: layout.elements, tensors: layout.slots },
    ...config,
  };
});
fs.writeFileSync(path.join(outDir, 'deltac_kernels.h'), cudaHeader(configs));
fs.writeFileSync(path.join(outDir, 'kernels.json'), JSON.stringify({ kernels }, null, 2) + '\n');
console.log(`wrote ${kernels.length} configurations (pyramid + whole block) to ${outDir}${tilingArg > 0 ? ` (tiling ${JSON.stringify(tiling)})` : ''}`);
