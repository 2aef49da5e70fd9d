/**
 * The inputs `deltac analyze` runs the model on: `.npy` files from a folder (as
 * `verify` reads them), or N seeded random sets at an image resolution — latents
 * and text states from a standard normal (float32 or float16 as the model takes
 * them), timesteps uniform in 0…999; batch 1,
 * symbolic text length 77. Also the bindings of the model's symbolic dims that
 * shape inference needs to give every layer its H×W.
 */
import ort from 'onnxruntime-node';
import { DataType } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import { float32ToHalfArray } from '../../ir/half.js';
import type { Model } from '../../ir/model.js';
import type { Value } from '../../ir/value.js';
import { readInputFolder, toOrtTensor } from '../../runtime/onnxruntime.js';
import { normalSampler, seededRandom } from '../../runtime/seeded-random.js';

export interface InputPlan {
  feedSets: Record<string, ort.Tensor>[];
  /** A name per feed set: the folder's set (`in0`), or `random <k>`. */
  setNames: string[];
  bindings: Record<string, number>;
  /** Latent H×W (the first 4-D input's last two dims), when there is one. */
  latent: [number, number] | null;
  description: string;
  notes: string[];
}

const TEXT_LENGTH = 77;

function modelInputs(model: Model): Value[] {
  return model.graph.inputs.filter((v) => !v.initializer);
}

function latentInput(model: Model): Value | undefined {
  return modelInputs(model).find((v) => v.type?.kind === 'tensor' && v.type.shape?.length === 4);
}

/** The image resolutions (pixels, latent × 8) a model with a static latent takes, or null. */
export function staticResolution(model: Model): [number, number] | null {
  const t = latentInput(model)?.type;
  const s = t?.kind === 'tensor' ? t.shape : null;
  return s && typeof s[2] === 'number' && typeof s[3] === 'number' ? [s[2] * 8, s[3] * 8] : null;
}

/** Bindings of the latent's symbolic H and W dims to `height` × `width` (empty when they are fixed). */
export function latentBindings(model: Model, height: number, width: number): Record<string, number> {
  const t = latentInput(model)?.type;
  const s = t?.kind === 'tensor' ? t.shape : null;
  const out: Record<string, number> = {};
  if (s && typeof s[2] === 'string') out[s[2]] = height;
  if (s && typeof s[3] === 'string') out[s[3]] = width;
  return out;
}

/** Image size in pixels for random inputs: one number for a square image. */
export type Resolution = number | { width: number; height: number };

/** `512` or `640x384` (width × height), as the option is written. */
export function resolutionText(r: Resolution): string {
  return typeof r === 'number' ? String(r) : `${r.width}x${r.height}`;
}

/** Random inputs at `resolution` pixels, or at the model's fixed size when null. */
export function randomInputs(model: Model, resolution: Resolution | null, samples: number, seed: number): InputPlan {
  const latent = latentInput(model);
  const fixed = staticResolution(model);
  const asked = resolution === null ? null : typeof resolution === 'number' ? [resolution, resolution] : [resolution.height, resolution.width];
  if (fixed && asked && (fixed[0] !== asked[0] || fixed[1] !== asked[1])) {
    throw new DeltacError(
      'DELTAC_E_BAD_OPTION',
      `--resolution ${resolutionText(resolution!)}: the model takes only ${fixed[1]}x${fixed[0]} px (width × height; its latent "${latent!.name}" is fixed at H×W ${fixed[0] / 8}×${fixed[1] / 8}); omit --resolution`,
    );
  }
  const [ph, pw] = asked ?? fixed ?? [512, 512];
  if (![ph, pw].every((v) => Number.isInteger(v) && v >= 8 && v % 8 === 0)) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `--resolution must be a multiple of 8 pixels in width and height (the latent is 1/8 of the image), got ${resolutionText(resolution!)}`);
  }
  const bindings = latentBindings(model, ph / 8, pw / 8);
  const inputs = modelInputs(model);
  // batch: the symbolic first dim of every input; other symbolic dims: text length
  for (const v of inputs) {
    const s = v.type?.kind === 'tensor' ? v.type.shape : null;
    s?.forEach((d, i) => {
      if (typeof d === 'string' && !(d in bindings)) bindings[d] = i === 0 ? 1 : TEXT_LENGTH;
    });
  }
  const feedSets: Record<string, ort.Tensor>[] = [];
  for (let k = 0; k < samples; k++) {
    const feeds: Record<string, ort.Tensor> = {};
    inputs.forEach((v, i) => {
      const t = v.type?.kind === 'tensor' ? v.type : null;
      if (!t?.shape) throw new DeltacError('DELTAC_E_BAD_OPTION', `input "${v.name}" has no declared shape; pass --inputs DIR with .npy files`);
      const dims = t.shape.map((d) => (typeof d === 'number' ? d : d === null ? 1 : bindings[d]!));
      const count = dims.reduce((a, b) => a * b, 1);
      const rand = seededRandom(seed * 7919 + k * 131 + i);
      const timestep = dims.length <= 1;
      if (t.dtype === DataType.FLOAT || t.dtype === DataType.FLOAT16) {
        const normal = normalSampler(rand);
        const values = Float32Array.from({ length: count }, () => (timestep ? Math.floor(rand() * 1000) : normal()));
        feeds[v.name] = t.dtype === DataType.FLOAT ? new ort.Tensor('float32', values, dims) : new ort.Tensor('float16', float32ToHalfArray(values), dims);
      } else if (t.dtype === DataType.INT64) {
        feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from({ length: count }, () => BigInt(Math.floor(rand() * 1000))), dims);
      } else if (t.dtype === DataType.INT32) {
        feeds[v.name] = new ort.Tensor('int32', Int32Array.from({ length: count }, () => Math.floor(rand() * 1000)), dims);
      } else {
        throw new DeltacError('DELTAC_E_BAD_OPTION', `input "${v.name}" has a type random inputs cannot fill; pass --inputs DIR with .npy files`);
      }
    });
    feedSets.push(feeds);
  }
  return {
    feedSets,
    setNames: feedSets.map((_, k) => `random ${k}`),
    bindings,
    latent: [ph / 8, pw / 8],
    description: `${samples} seeded random input set(s) at ${pw}×${ph} px (width × height; seed ${seed})`,
    notes: [],
  };
}

export function folderInputs(model: Model, dir: string): InputPlan {
  const sets = readInputFolder(dir);
  if (!sets.size) throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `no .npy inputs in "${dir}"`);
  const inputs = modelInputs(model);
  const shapeKey = (feeds: Record<string, { shape: number[] }>) => inputs.map((v) => feeds[v.name]?.shape.join('x') ?? '?').join(';');
  const entries = [...sets];
  const key = shapeKey(entries[0]![1]);
  const same = entries.filter(([, f]) => shapeKey(f) === key);
  const notes: string[] = [];
  if (same.length < entries.length) {
    notes.push(`input sets ${entries.filter(([, f]) => shapeKey(f) !== key).map(([k]) => k).join(', ')} have other sizes than ${entries[0]![0]} and were skipped (one grid size per analysis)`);
  }
  const bindings: Record<string, number> = {};
  const first = same[0]![1];
  for (const v of inputs) {
    const a = first[v.name];
    if (!a) throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `"${dir}" has no .npy file for input "${v.name}" (in0.${v.name}.npy or ${v.name}.npy)`);
    const s = v.type?.kind === 'tensor' ? v.type.shape : null;
    if (s && s.length !== a.shape.length) throw new DeltacError('DELTAC_E_BAD_OPTION', `input "${v.name}" is ${a.shape.length}-D in "${dir}" but the model declares rank ${s.length}`);
    s?.forEach((d, i) => {
      if (typeof d === 'string') bindings[d] = a.shape[i]!;
      else if (typeof d === 'number' && d !== a.shape[i]) throw new DeltacError('DELTAC_E_BAD_OPTION', `input "${v.name}" is [${a.shape.join(',')}] in "${dir}" but the model takes [${s.join(',')}]`);
    });
  }
  const lat = latentInput(model);
  const ls = lat ? first[lat.name]?.shape : undefined;
  return {
    feedSets: same.map(([, feeds]) => Object.fromEntries(inputs.map((v) => [v.name, toOrtTensor(feeds[v.name]!)]))),
    setNames: same.map(([k]) => k),
    bindings,
    latent: ls && ls.length === 4 ? [ls[2]!, ls[3]!] : null,
    description: `${same.length} input set(s) from ${dir} (${same.map(([k]) => k).join(', ')})`,
    notes,
  };
}
