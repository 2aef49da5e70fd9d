/**
 * Prepares what the web page (examples/web/index.html) loads, under examples/out/web/:
 *
 *   - examples/out/pixart-mini.delta.onnx   the converted model (`npm run example` writes the same file)
 *   - kernels/deltac-kernels.js             the generated WebGPU host module, as JavaScript
 *   - kernels/gate-weights.bin              every layer's gate weights
 *   - kernels/block-weights.bin             every layer's whole-block weights (runBlock), in the kernels' packed layout
 *   - layers.json                           each layer's H, W, C, Ci, K, scales, gate (for the page's CPU reference)
 *   - block-reference.bin                   the same block weights read back from the saved model's lowered layers
 *                                           and unpacked (src/runtime/layer-region.ts, as `deltac convert`'s check
 *                                           reads them; offsets in layers.json), so that the reference shares
 *                                           neither the kernels' packing nor the lowering's
 *   - main.js                               the page script (main.ts + src/reference), bundled with esbuild
 *
 * onnxruntime-web is not bundled: the page imports it through an import map from the
 * server's /ort/ folder (node_modules/onnxruntime-web/dist), where its .wasm files lie.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, transform, type Plugin } from 'esbuild';
import { emitKernels } from '../../src/codegen/emit.js';
import type { DeltaConvBlockWeights } from '../../src/reference/delta-conv-block.js';
import { convertedLayers } from '../../src/runtime/layer-region.js';
import { convert, loadModel, saveModel } from '../../src/index.js';

export const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(EXAMPLES, '..');
export const PIXART = path.join(EXAMPLES, 'pixart-mini');
export const CONVERTED = path.join(EXAMPLES, 'out', 'pixart-mini.delta.onnx');
export const WEB_OUT = path.join(EXAMPLES, 'out', 'web');

/** One converted layer as the page needs it to run the kernel and the CPU reference. */
export interface WebLayer {
  name: string;
  height: number;
  width: number;
  inner: number;
  kernel: number;
  scales: number[];
  gate: 'simple' | 'sigmoid';
  /** C: the tokens' channels. */
  channels: number;
  /** Where each whole-block weight lies in block-reference.bin: [offset, length] in float32 elements. */
  blockReference: Record<keyof DeltaConvBlockWeights, [number, number]>;
}

/** The order of the weights of one layer in block-reference.bin. */
const REFERENCE_ORDER: (keyof DeltaConvBlockWeights)[] = ['upWeight', 'upBias', 'gateWeights', 'outWeight', 'outBias', 'poolWeight', 'poolBias'];

/** node:fs and friends are imported by modules the page uses only for their pure functions (parseNpy). */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({ contents: 'export default {};', loader: 'js' }));
  },
};

/** Tests build the page from two processes at once: readers must never see half a file. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Newest modification time of the files under `paths` (folders walked recursively). */
function newestMtime(paths: string[]): number {
  let newest = 0;
  for (const p of paths) {
    const st = fs.statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(fs.readdirSync(p).map((n) => path.join(p, n))) : st.mtimeMs);
  }
  return newest;
}

/** Whether `file` exists and is at least as new as every file under `sources` (files or folders). */
export function upToDate(file: string, sources: string[]): boolean {
  return fs.existsSync(file) && fs.statSync(file).mtimeMs >= newestMtime(sources);
}

/** Builds everything the page needs; quick when the outputs are up to date. */
export async function buildWebExample(log: (line: string) => void = () => {}): Promise<void> {
  const model = path.join(PIXART, 'model.onnx');
  const weights = path.join(PIXART, 'delta.safetensors');
  // The outputs are stale when the model, its weights or deltac itself (the conversion and
  // the kernel generators under src/ and kernels/, and this script) changed since they were built.
  const sources = [model, weights, path.join(REPO, 'src'), path.join(REPO, 'kernels'), fileURLToPath(import.meta.url)];
  fs.mkdirSync(path.join(WEB_OUT, 'kernels'), { recursive: true });

  const hostJs = path.join(WEB_OUT, 'kernels', 'deltac-kernels.js');
  const referenceBin = path.join(WEB_OUT, 'block-reference.bin');
  if (!upToDate(CONVERTED, sources) || !upToDate(hostJs, sources) || !upToDate(referenceBin, sources)) {
    // One conversion: the kernels come from its fused stage (as `deltac convert --emit-kernels`), the page's model from its end.
    log(`converting ${path.relative(process.cwd(), model)} → ${path.relative(process.cwd(), CONVERTED)} and emitting its WGSL kernels and host module`);
    const dir = path.join(WEB_OUT, 'kernels');
    const m = loadModel(model);
    const report = convert(m, { weights, onFused: (fused) => emitKernels(fused, dir, { modelName: 'pixart-mini' }) });
    saveModel(m, CONVERTED, { force: true });
    // each layer's block weights, read back from the saved model (lowered: unpacked; conv_out's bias folded into conv_pool's)
    const blockWeights = new Map(convertedLayers(loadModel(CONVERTED)).map((l) => [l.layer.modulePath, l.weights]));
    const referenceArrays: Float32Array[] = [];
    let at = 0;
    const layers: WebLayer[] = report.layers
      .filter((l) => l.status === 'converted')
      .map((l) => {
        const name = l.modulePath ?? l.id;
        const w = blockWeights.get(name);
        if (!w) throw new Error(`no converted layer ${name} in ${CONVERTED}`);
        const blockReference = {} as WebLayer['blockReference'];
        for (const key of REFERENCE_ORDER) {
          blockReference[key] = [at, w[key].length];
          referenceArrays.push(w[key]);
          at += w[key].length;
        }
        return {
          name,
          height: Number(l.staticHW?.[0] ?? l.hw?.[0]),
          width: Number(l.staticHW?.[1] ?? l.hw?.[1]),
          inner: l.inner!,
          kernel: l.kernel!,
          scales: l.scales!,
          gate: l.gate!,
          channels: w.outBias.length,
          blockReference,
        };
      });
    if (layers.some((l) => !(l.height > 0 && l.width > 0))) throw new Error('pixart-mini should have static H×W in every layer');
    const reference = new Float32Array(at);
    referenceArrays.reduce((offset, a) => (reference.set(a, offset), offset + a.length), 0);
    writeAtomic(referenceBin, new Uint8Array(reference.buffer));
    writeAtomic(path.join(WEB_OUT, 'layers.json'), JSON.stringify(layers, null, 2));
    const ts = fs.readFileSync(path.join(dir, 'deltac-kernels.ts'), 'utf8');
    writeAtomic(hostJs, (await transform(ts, { loader: 'ts', format: 'esm', target: 'es2022' })).code);
  }

  log('bundling examples/web/main.ts');
  const bundle = await build({
    entryPoints: [path.join(EXAMPLES, 'web', 'main.ts')],
    outfile: path.join(WEB_OUT, 'main.js'),
    write: false,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    external: ['onnxruntime-web'],
    plugins: [noNodeBuiltins],
    sourcemap: true,
    logLevel: 'warning',
  });
  for (const out of bundle.outputFiles) writeAtomic(out.path, out.contents);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await buildWebExample((line) => console.log(`web: ${line}`));
}
