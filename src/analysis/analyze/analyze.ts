/**
 * `deltac analyze`: where each self-attention layer of a model looks (centroid-
 * aligned attention maps, seed §A), how much of its attention a K×K window holds
 * and which K to choose per resolution level (§G), the effective receptive fields
 * of the attention and — with a checkpoint — of the ΔConvBlock that would replace
 * it, on the same captured input (§D), and how close that block's output is to the
 * attention's on every captured sample (runtime/layer-fidelity.ts).
 *
 * The model runs in onnxruntime on an instrumented in-memory copy (instrument.ts,
 * staged-run.ts); everything else is computed here in TypeScript.
 */
import { DataType } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import { DEFAULT_GATE, resolveScales, selfAttentionRefs } from '../../passes/delta-conv/insert-pyramid-conv.js';
import type { GateKind } from '../../passes/delta-conv/op.js';
import type { ModelFamily } from '../../passes/delta-conv/spatial/index.js';
import type { DeltaConvBlockParams, DeltaConvBlockWeights } from '../../reference/delta-conv-block.js';
import { blockFidelity, type FitVerdict, fitVerdict, NO_FIT_RMS, OUTLIER_FACTOR, relativeText } from '../../runtime/layer-fidelity.js';
import { type Binding, type BindingMethod, bindLayers, readLayerMap } from '../../weights/binding.js';
import { Checkpoint, stackedGates } from '../../weights/checkpoint.js';
import { attentionErf, type AttentionParams, attentionRows } from './attention-erf.js';
import { blockErf } from './block-erf.js';
import { folderInputs, type InputPlan, latentBindings, randomInputs, type Resolution, resolutionText } from './inputs.js';
import { captureSites, instrument, type LayerCaptureNames } from './instrument.js';
import { type AttentionLayer, findLayers, gridProblem, packedAttentionLayers, pixelMultiple } from './layers.js';
import { type AlignedMap, AlignedMapBuilder, type Locality, locality, meanMap, RECOMMEND_MASS, smallestWindow } from './maps.js';
import { readVector } from './projection-weights.js';
import { attentionParams } from './projections.js';
import { runStaged } from './staged-run.js';
import { compareArrays } from '../../runtime/compare.js';

export interface AnalyzeOptions {
  /** ΔConvFusion checkpoint: adds the ΔConvBlock ERF and the checkpoint's K. */
  weights?: string;
  /** Folder of .npy inputs (as `verify` reads them); else random inputs. */
  inputs?: string;
  /** Random input sets (default 2). */
  samples?: number;
  /** Image size in pixels for random inputs: 512, or { width, height } (default 512, or the model's fixed size). */
  resolution?: Resolution;
  /** Only layers whose module path matches (substring, `*` wildcards). */
  layers?: string;
  /** Query positions sampled per layer (default 64). */
  queries?: number;
  seed?: number;
  /** Gate of the checkpoint's blocks (default: simple for UNets, sigmoid for DiTs). */
  gate?: GateKind;
  /** Gate scales (default 1, ½, ¼ … one per gate). */
  scales?: number[];
  /** Explicit layer → checkpoint block assignments, as `convert --map` takes them (a JSON file or the object). */
  map?: string | Record<string, string>;
  /** Weight bytes per onnxruntime stage (default 512 MiB). */
  stageBytes?: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface LayerAnalysis {
  name: string;
  family: ModelFamily;
  height: number;
  width: number;
  channels: number | null;
  heads: number | null;
  /** Where the attention probabilities came from. */
  probsSource: 'captured' | 'recomputed' | 'none';
  map: AlignedMap | null;
  locality: Locality | null;
  /** Token the ERFs are taken at (row-major), the grid centre. */
  erfToken: number;
  /** The ERFs are the mean |∂y/∂x| over this many captured samples (every input set, every batch item). */
  erfSamples: number;
  attentionErf: Float64Array | null;
  blockErf: Float64Array | null;
  /** TypeScript attention (read from the model's weights) vs onnxruntime, max|Δ|/max|ref| at the sampled rows. */
  check: { output: number | null; probs: number | null };
  checkpoint: { block: string; binding: BindingMethod; kernel: number; inner: number; gates: number; gate: GateKind; scales: number[] } | null;
  /** The ΔConvBlock's output (CPU reference) against the attention's (onnxruntime) on the captured inputs; null without a block. */
  fidelity: LayerFidelity | null;
  notes: string[];
}

/** runtime/layer-fidelity.ts: rel = max|Δ|/max|attn|, rms = ‖Δ‖₂/‖attn‖₂. */
export interface LayerFidelity {
  /** The worst sample's max|Δ|/max|attn|. */
  rel: number;
  /** The worst sample's ‖Δ‖₂/‖attn‖₂. */
  rms: number;
  /** `poor`: rms ≥ 1 (no closer than dropping the layer); `outlier`: rms ≥ 3× the median of the report's layers. */
  fit: FitVerdict;
  /** Every captured sample: input set and batch item. */
  samples: { input: string; item: number; rel: number; rms: number }[];
}

export interface LevelAnalysis {
  height: number;
  width: number;
  layers: string[];
  /** Mean locality of the level's maps. */
  locality: Locality | null;
  /** Smallest odd K whose window holds RECOMMEND_MASS of the level's mean map. */
  recommendedK: number | null;
  /** K of the checkpoint's blocks at this level (distinct values). */
  checkpointK: number[];
}

export interface AnalysisReport {
  model: string;
  inputs: string;
  latent: [number, number] | null;
  queriesPerLayer: number;
  seed: number;
  weights: string | null;
  recommendMass: number;
  layers: LayerAnalysis[];
  levels: LevelAnalysis[];
  notes: string[];
  seconds: number;
}

/** Sampled query rows on which the TypeScript attention is checked against onnxruntime. */
const CHECK_ROWS = 8;

/** A layer's block as convert binds it (the checkpoint binding, gate and scales), in the reference's layout. */
function blockWeights(ckpt: Checkpoint, bound: Binding, layer: AttentionLayer, options: AnalyzeOptions) {
  const { block, method } = bound;
  const geo = ckpt.geometry(block, layer.name);
  const t = ckpt.read(block);
  const weights: DeltaConvBlockWeights = {
    upWeight: t.upWeight.toFloat32(),
    upBias: t.upBias.toFloat32(),
    gateWeights: stackedGates(t, geo),
    outWeight: t.outWeight.toFloat32(),
    outBias: t.outBias.toFloat32(),
    poolWeight: t.poolWeight.toFloat32(),
    poolBias: t.poolBias.toFloat32(),
  };
  const scales = resolveScales(options.scales, geo, layer.name);
  const params: DeltaConvBlockParams = { channels: geo.channels, inner: geo.inner, kernel: geo.kernel, scales, gate: options.gate ?? DEFAULT_GATE[layer.family] };
  return { info: { block: block.prefix, binding: method, kernel: geo.kernel, inner: geo.inner, gates: geo.gates, gate: params.gate, scales }, params, weights };
}

/** One line per kind of misfit, naming the layers (only the count when every layer is poor). */
function fitNotes(layers: LayerAnalysis[]): string[] {
  const judged = layers.filter((l) => l.fidelity);
  const named = (ls: LayerAnalysis[]) => ls.map((l) => `${l.name} (rms ${relativeText(l.fidelity!.rms)})`).join(', ');
  const poor = judged.filter((l) => l.fidelity!.fit === 'poor');
  const outliers = judged.filter((l) => l.fidelity!.fit === 'outlier');
  const out: string[] = [];
  if (poor.length && poor.length === judged.length) {
    out.push(
      `the checkpoint fits none of the ${judged.length} layer(s): no ΔConvBlock is closer to its attention than an output of zeros would be (rms ≥ ${NO_FIT_RMS}); ` +
        'weights for another model or fine-tune, the wrong --gate or --scales, or untrained weights',
    );
  } else if (poor.length) {
    out.push(`${poor.length} layer(s) do not fit (rms ≥ ${NO_FIT_RMS}): ${named(poor)}`);
  }
  if (outliers.length) out.push(`${outliers.length} layer(s) stand out from the others (rms ≥ ${OUTLIER_FACTOR}× the median): ${named(outliers)}`);
  return out;
}

/** Latent side the size probe runs at: a power of two every UNet level halves exactly. */
const PROBE_LATENT = 64;

/**
 * The pixel multiple a UNet needs, read from its attention grids at a latent that
 * halves exactly at every level (the grids at a bad size are themselves off); null
 * when it cannot be told.
 */
function probeMultiple(model: Model, bindings: Record<string, number>): [number, number] | null {
  try {
    const probe = latentBindings(model, PROBE_LATENT, PROBE_LATENT);
    if (!Object.keys(probe).length) return null;
    const layers = findLayers(model, { ...bindings, ...probe }).layers;
    return gridProblem(layers) ? null : pixelMultiple(layers, [PROBE_LATENT, PROBE_LATENT]);
  } catch {
    return null;
  }
}

export async function analyzeModel(file: string, options: AnalyzeOptions = {}): Promise<AnalysisReport> {
  const started = performance.now();
  const seed = options.seed ?? 0;
  const queries = options.queries ?? 64;
  if (!(Number.isInteger(queries) && queries >= 1)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--queries must be a positive integer, got ${options.queries}`);
  const samples = options.samples ?? 2;
  if (!(Number.isInteger(samples) && samples >= 1 && samples <= 64)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--samples must be an integer from 1 to 64, got ${options.samples}`);
  if (options.inputs && (options.resolution !== undefined || options.samples !== undefined)) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', '--inputs takes the sizes from the .npy files: give either --inputs or --samples/--resolution');
  }
  const checkpoint = options.weights ? Checkpoint.open(options.weights) : undefined;
  const load = (): Model => loadModel(file);
  const first = load();
  let plan: InputPlan;
  if (options.inputs) plan = folderInputs(first, options.inputs);
  else plan = randomInputs(first, options.resolution ?? null, samples, seed);
  const found = findLayers(first, plan.bindings, options.layers);
  // the checkpoint bound to the layers as convert binds it: by name, by position, or by --map
  const refs = selfAttentionRefs(found.selfs);
  const map = typeof options.map === 'string' ? readLayerMap(options.map) : options.map;
  const binding = checkpoint ? bindLayers(refs, checkpoint, map) : null;
  const problem = gridProblem(found.layers);
  if (problem) {
    const what = options.inputs ? `the inputs in "${options.inputs}"` : `--resolution ${resolutionText(options.resolution ?? 512)}`;
    const m = probeMultiple(first, plan.bindings);
    const hint = m ? `: give a width and height that are multiples of ${m[0] === m[1] ? m[0] : `${m[1]} (width) and ${m[0]} (height)`} px` : '';
    throw new DeltacError('DELTAC_E_BAD_OPTION', `${what}: the model cannot take this size: ${problem} (UNet levels need a latent divisible by 2 per level${hint})`);
  }
  // `first` stays as loaded (its layers' weights are read below); the staged run takes
  // apart fresh copies, instrumented by name and position without matching them again
  const sites = captureSites(first, found.layers);
  const instrumented = (): { model: Model; names: LayerCaptureNames[] } => {
    const model = load();
    return { model, names: instrument(model, sites, queries, seed) };
  };
  const initial = instrumented();
  const names = initial.names;
  let fresh: Model | null = initial.model;
  const wanted = names.flatMap((n) => [n.x, n.y, ...(n.probs ? [n.probs] : [])]);
  const build = (): Model => {
    const m = fresh ?? instrumented().model;
    fresh = null;
    return m;
  };
  const total = found.layers.length + 1;
  const packed = packedAttentionLayers(first, found.layers);
  const runs = await runStaged(build, wanted, plan.feedSets, {
    stageBytes: options.stageBytes,
    onStage: (done, stages) => options.onProgress?.(done / stages, total, `onnxruntime stage ${done}/${stages}`),
  }).catch((e: unknown) => {
    if (!(e instanceof DeltacError) || e.code !== 'DELTAC_E_RUNTIME' || !packed.length) throw e;
    // onnxruntime's CPU provider has no kernel for packed QKV/KV MultiHeadAttention: nothing can be captured
    throw new DeltacError(
      'DELTAC_E_RUNTIME',
      "onnxruntime's CPU provider cannot run com.microsoft.MultiHeadAttention with packed QKV or KV, so no layer's input can be captured " +
        `(no attention maps, no ERFs):\n${packed.map((l) => `  ${l}`).join('\n')}\n` +
        "Analyze the model before onnxruntime's transformer optimizer, or optimize it again without the packed fusions (--disable_packed_qkv --disable_packed_kv). " +
        `onnxruntime said: ${e.message}`,
    );
  });
  const data = (name: string, k: number): { data: Float32Array; dims: number[] } => {
    const t = runs[k]!.get(name)!;
    return { data: t.data as Float32Array, dims: [...t.dims] };
  };

  const layers: LayerAnalysis[] = found.layers.map((layer, li) => {
    const n = names[li]!;
    const tokens = layer.height * layer.width;
    const x0 = data(n.x, 0);
    const channels = x0.dims[x0.dims.length - 1] ?? null;
    const batch = x0.data.length / (tokens * (channels ?? 1));
    const notes: string[] = [];
    let heads = layer.match.heads;
    const match = layer.match;
    let pr = attentionParams(match, found.ctx);
    const builder = new AlignedMapBuilder(layer.height, layer.width);
    let probsSource: LayerAnalysis['probsSource'] = 'none';
    if (n.probs) {
      const rowsPerSet = data(n.probs, 0).data.length / tokens;
      heads ??= Math.round(rowsPerSet / (batch * n.queries.length));
      if ('reason' in pr) pr = attentionParams(match, found.ctx, heads);
      for (let k = 0; k < runs.length; k++) builder.add(data(n.probs, k).data, n.queries);
      probsSource = 'captured';
    }
    const p: AttentionParams | null = 'params' in pr ? pr.params : null;
    if (!p) notes.push(`attention weights not readable (${(pr as { reason: string }).reason}): no attention ERF`);
    heads ??= p?.heads ?? null;
    const sample = (k: number, b: number) => data(n.x, k).data.subarray(b * tokens * channels!, (b + 1) * tokens * channels!);
    const check = { output: null as number | null, probs: null as number | null };
    if (p && channels) {
      // the check: CHECK_ROWS of the sampled queries, output and probabilities
      const rows = n.queries.subarray(0, CHECK_ROWS);
      const ts = attentionRows(sample(0, 0), tokens, p, rows);
      const y = data(n.y, 0).data;
      const yRows = new Float32Array(rows.length * channels);
      rows.forEach((q, i) => yRows.set(y.subarray(q * channels, (q + 1) * channels), i * channels));
      check.output = compareArrays(ts.y, yRows).rel;
      if (n.probs) {
        // captured rows are [B·heads, Q, N]; the first sample's heads, first CHECK_ROWS rows
        const got = data(n.probs, 0).data;
        const tsHeads = ts.probs.length / (rows.length * tokens);
        const ref = new Float32Array(ts.probs.length);
        for (let h = 0; h < tsHeads; h++) ref.set(got.subarray(h * n.queries.length * tokens, (h * n.queries.length + rows.length) * tokens), h * rows.length * tokens);
        check.probs = compareArrays(ts.probs, ref).rel;
      } else {
        for (let k = 0; k < runs.length; k++) for (let b = 0; b < batch; b++) builder.add(attentionRows(sample(k, b), tokens, p, n.queries, false).probs, n.queries);
        probsSource = 'recomputed';
      }
      // fp16 models compute in half precision in onnxruntime: allow for its rounding
      const tolerance = found.ctx.dtype(layer.match.input) === DataType.FLOAT ? 1e-3 : 1e-2;
      if (check.output > tolerance) notes.push(`attention recomputed from the model's weights differs from onnxruntime by ${check.output.toExponential(1)} (relative): its ERF is unreliable`);
    }
    const map = probsSource === 'none' ? null : builder.result();
    const erfToken = (layer.height >> 1) * layer.width + (layer.width >> 1);
    // ERFs: the mean of |∂y(centre)/∂x| over every captured sample
    const erfSamples = runs.length * batch;
    const meanErf = (erf: (x: Float32Array) => Float64Array): Float64Array => {
      const acc = new Float64Array(tokens);
      for (let k = 0; k < runs.length; k++) for (let b = 0; b < batch; b++) erf(sample(k, b)).forEach((v, i) => (acc[i]! += v / erfSamples));
      return acc;
    };
    const attnErf = p && channels ? meanErf((x) => attentionErf(x, tokens, p, erfToken)) : null;
    let blockInfo: LayerAnalysis['checkpoint'] = null;
    let bErf: Float64Array | null = null;
    let fidelity: Omit<LayerFidelity, 'fit'> | null = null;
    const bound = binding?.bound.get(refs[layer.index]!.id);
    if (checkpoint && channels) {
      const bw = bound ? blockWeights(checkpoint, bound, layer, options) : null;
      if (!bw) notes.push('the checkpoint has no block for this layer');
      else if (bw.params.channels !== channels) notes.push(`the checkpoint's block has C = ${bw.params.channels}, the layer ${channels}`);
      else {
        blockInfo = bw.info;
        bErf = meanErf((x) => blockErf(x, layer.height, layer.width, bw.weights, bw.params, erfToken));
        // the module's output as captured; to_out's bias, when an optimizer moved it into the next node, belongs to it
        const absorbed = match.absorbedBias ? readVector(match.absorbedBias.node.inputs[match.absorbedBias.index]) : null;
        if (match.absorbedBias && absorbed?.length !== channels) notes.push("to_out's bias (fused into the next node) is not a constant [C]: the ΔConvBlock is compared without it");
        const samples: LayerFidelity['samples'] = [];
        for (let k = 0; k < runs.length; k++) {
          for (let b = 0; b < batch; b++) {
            const y = data(n.y, k).data.subarray(b * tokens * channels, (b + 1) * tokens * channels);
            const f = blockFidelity(sample(k, b), y, layer.height, layer.width, bw.weights, bw.params, absorbed?.length === channels ? absorbed : null);
            samples.push({ input: plan.setNames[k]!, item: b, ...f });
          }
        }
        const worst = (key: 'rel' | 'rms') => samples.reduce((m, s) => (Number.isNaN(s[key]) || s[key] > m ? s[key] : m), 0);
        fidelity = { rel: worst('rel'), rms: worst('rms'), samples };
      }
    }
    options.onProgress?.(li + 2, total, layer.name);
    return {
      name: layer.name,
      family: layer.family,
      height: layer.height,
      width: layer.width,
      channels,
      heads,
      probsSource,
      map,
      locality: map ? locality(map) : null,
      erfToken,
      erfSamples,
      attentionErf: attnErf,
      blockErf: bErf,
      check,
      checkpoint: blockInfo,
      fidelity: fidelity ? { ...fidelity, fit: 'ok' } : null,
      notes,
    };
  });
  // a layer's fit is judged against the others too (an outlier among them)
  const errors = layers.flatMap((l) => (l.fidelity ? [l.fidelity.rms] : []));
  for (const l of layers) if (l.fidelity) l.fidelity.fit = fitVerdict(l.fidelity.rms, errors);
  const notes = [...plan.notes, ...fitNotes(layers)];

  const levels = new Map<string, LayerAnalysis[]>();
  for (const l of layers) {
    const key = `${l.height}x${l.width}`;
    levels.set(key, [...(levels.get(key) ?? []), l]);
  }
  const levelList: LevelAnalysis[] = [...levels.values()].map((ls) => {
    const maps = ls.map((l) => l.map).filter((m): m is AlignedMap => !!m);
    const mean = maps.length ? meanMap(maps) : null;
    return {
      height: ls[0]!.height,
      width: ls[0]!.width,
      layers: ls.map((l) => l.name),
      locality: mean ? locality(mean) : null,
      recommendedK: mean ? smallestWindow(mean, RECOMMEND_MASS) : null,
      checkpointK: [...new Set(ls.map((l) => l.checkpoint?.kernel).filter((k): k is number => k !== undefined))],
    };
  });
  return {
    model: file,
    inputs: plan.description,
    latent: plan.latent,
    queriesPerLayer: queries,
    seed,
    weights: options.weights ?? null,
    recommendMass: RECOMMEND_MASS,
    layers,
    levels: levelList.sort((a, b) => b.height * b.width - a.height * a.width),
    notes,
    seconds: (performance.now() - started) / 1000,
  };
}
