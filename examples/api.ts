/**
 * deltac as a library: load an exported PixArt-layout DiT, convert every
 * self-attention into a ΔConvBlock with the distilled weights, save, check every
 * layer of the saved file (as `deltac convert` does), run the result in
 * onnxruntime-node and compare it with PyTorch's output.
 *
 *   npm run example:api
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkSavedModel, compareArrays, convert, loadModel, OrtModel, readInputFolder, readNpy, saveModel } from '../src/index.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const dir = path.join(here, 'pixart-mini');
const out = path.join(here, 'out', 'pixart-mini.api.onnx');

const weights = path.join(dir, 'delta.safetensors');
const model = loadModel(path.join(dir, 'model.onnx'));
const report = convert(model, { weights });
for (const layer of report.layers) {
  console.log(`${layer.modulePath}: ${layer.status}, K=${layer.kernel}, gate=${layer.gate}, H×W from ${layer.hwSource}`);
}

fs.mkdirSync(path.dirname(out), { recursive: true });
const saved = saveModel(model, out);
console.log(`saved ${saved.modelPath} (${saved.modelBytes} bytes)`);

// every layer cut out of the saved file, run in onnxruntime and compared with the reference ΔConvBlock
const check = await checkSavedModel(path.join(dir, 'model.onnx'), saved, { weights });
const worst = Math.max(...(check.layers?.layers ?? []).map((l) => l.error ?? 0));
console.log(`check: ${check.layers?.layers.length} layers, worst relative error ${worst.toExponential(2)} against the reference ΔConvBlock`);

const session = await OrtModel.load(out);
for (const [set, feeds] of readInputFolder(dir)) {
  const [result] = Object.values(await session.run(feeds));
  const reference = readNpy(path.join(dir, `${set.replace('in', 'out')}.delta.npy`));
  const { rel } = compareArrays(result!.data, reference.data as Float32Array);
  console.log(`${set}: max|Δ|/max|ref| = ${rel.toExponential(2)} against PyTorch (${rel <= 1e-4 ? 'ok' : 'MISMATCH'})`);
}
await session.release();
