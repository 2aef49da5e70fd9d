/**
 * The conversion pass: every self-attention module (`attn1`) becomes one
 * `ai.deltac.PyramidConvBlock` bound to its distilled weights. The old module's
 * nodes become dead and are removed by the cleanup passes that follow.
 *
 * In a quantized model the block stays float and the region's edges are clean: it
 * reads `DequantizeLinear(input)` with the module's own input scale and zero point
 * when the module read a quantized tensor, and its output is quantized again with
 * the module's output scale and zero point when the module's readers read one. A
 * module whose scales are not constants is kept (DELTAC_W_QUANTIZED).
 */
import { type Diagnostic, warning } from '../../ir/diagnostics.js';
import { DataType, dtypeName } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import { runInference } from '../../ir/shape-inference/infer.js';
import { Tensor } from '../../ir/tensor.js';
import type { Dim } from '../../ir/types.js';
import type { Value } from '../../ir/value.js';
import { type BindingMethod, bindLayers, type LayerRef } from '../../weights/binding.js';
import { type BlockGeometry, type BlockTensors, type Checkpoint, stackedGates } from '../../weights/checkpoint.js';
import { findAttention, isConvertibleDtype } from '../attention/find-attention.js';
import { type AttentionMatch, MatchContext } from '../attention/match.js';
import type { QuantParams } from '../quantization/reading.js';
import type { Pass, PassResult } from '../pass-manager.js';
import {
  type GateKind,
  PYRAMID_CONV_DOMAIN,
  PYRAMID_CONV_OP,
  PYRAMID_CONV_OPSET,
} from './op.js';
import { type ModelFamily, type SpatialSource, emitHW, spatialIndex } from './spatial/index.js';

export interface InsertPyramidConvOptions {
  checkpoint: Checkpoint;
  /** Gate variant for every layer; default per family (UNet: simple, DiT: sigmoid). */
  gate?: GateKind;
  /** Spatial scale per gate; default (1, 1/2, 1/4 …) with as many gates as the checkpoint has. */
  scales?: number[];
  /** Explicit layer → checkpoint block assignments. */
  map?: Record<string, string>;
  /** Layers without weights keep their attention (reported) instead of failing. */
  allowPartial?: boolean;
}

export interface LayerReport {
  id: string;
  modulePath: string | null;
  blockPath: string | null;
  status: 'converted' | 'kept';
  reason?: string;
  pattern: string;
  checkpointBlock?: string;
  binding?: BindingMethod;
  family?: ModelFamily;
  hwSource?: string;
  /** H, W as far as known in the model (numbers when static, symbols otherwise). */
  hw?: [Dim, Dim];
  channels: number | null;
  heads: number | null;
  inner?: number;
  kernel?: number;
  scales?: number[];
  gate?: GateKind;
  dtype: string;
  node?: string;
  /** Name of the int64 [H, W] value the block reads. */
  hwValue?: string;
  staticHW?: [number, number];
  /** The tokens the block reads, the value that replaced the attention's output, and the tensor H and W are read from (with their axes). */
  tokensValue?: string;
  outputValue?: string;
  hwSourceValue?: string;
  hwAxes?: [number, number];
  /** A quantized module's edges: the quantized tokens the block's input is dequantized from, the quantized value its output becomes. */
  quantizedTokensValue?: string;
  quantizedOutputValue?: string;
  /**
   * Set for a module of a quantized model: the forms it was read through, the element
   * types at its edges (`u8` when the module read or wrote a quantized tensor, which the
   * replacement dequantizes / quantizes again with the module's own scale and zero
   * point) and the block's precision (float: the ΔConvBlock is not quantized).
   */
  quantization?: { forms: string[]; input: string; output: string; block: string };
}

export interface InsertReport {
  layers: LayerReport[];
  crossAttention: number;
  unmatched: { node: string; reason: string }[];
  unusedCheckpointBlocks: string[];
}

export const DEFAULT_GATE: Record<ModelFamily, GateKind> = { unet: 'simple', dit: 'sigmoid' };

export const insertPyramidConvPass: Pass<InsertPyramidConvOptions> = {
  name: 'insert-pyramid-conv',
  description: 'replace every self-attention module with a PyramidConvBlock bound to checkpoint weights',
  run(model, options): PassResult {
    if (!options.checkpoint) throw new DeltacError('DELTAC_E_BAD_OPTION', 'insert-pyramid-conv needs a checkpoint');
    const env = runInference(model);
    const ctx = new MatchContext(env);
    const found = findAttention(model, env);
    const selfs = found.matches.filter((m) => m.kind === 'self');
    const report: InsertReport = {
      layers: [],
      crossAttention: found.matches.length - selfs.length,
      unmatched: found.unmatched.map((u) => ({ node: u.node.name, reason: u.reason })),
      unusedCheckpointBlocks: [],
    };
    const diagnostics: Diagnostic[] = [];
    if (selfs.length === 0) {
      throw new DeltacError(
        'DELTAC_E_NO_SELF_ATTENTION',
        `the model has no self-attention to convert (${found.matches.length} cross-attention, ${found.unmatched.length} unrecognised attention-like subgraphs)`,
      );
    }
    const layers = selfAttentionRefs(selfs);
    const binding = bindLayers(layers, options.checkpoint, options.map);
    report.unusedCheckpointBlocks = binding.unusedBlocks;
    if (binding.bound.size === 0) {
      const blocks = [...options.checkpoint.blocks.values()].map((b) => b.path);
      throw new DeltacError(
        'DELTAC_E_WEIGHTS_UNUSED',
        `none of the model's ${layers.length} self-attention layers (${preview(layers.map((l) => l.id))}) has weights in "${options.checkpoint.path}" (${blocks.length ? `its blocks: ${preview(blocks)}` : 'it holds no ΔConvBlock weights'}); is the checkpoint for another model? Use --map to assign blocks explicitly`,
      );
    }
    if (binding.missing.length && !options.allowPartial) {
      const l = binding.missing[0]!;
      throw new DeltacError(
        'DELTAC_E_WEIGHT_MISSING',
        `layer ${l.id} has no ΔConvBlock weights in "${options.checkpoint.path}" (expected keys "${l.expectedBlock ?? '<block>'}.conv1.…"; ${binding.missing.length} layer(s) missing); pass --allow-partial to keep their attention`,
        { layers: binding.missing.map((m) => m.id) },
      );
    }
    const opset = model.opset('') ?? 17;
    // The spatial source of every token tensor, in one pass over the graph (linear in depth). It must
    // not cross attention modules' outputs (their head merge looks like a flatten).
    const spatial = spatialIndex(model.graph, ctx, new Set(found.matches.map((m) => m.output)));
    const noLayout = layers.filter((l, i) => binding.bound.has(l.id) && !spatial.has(selfs[i]!.input));
    if (noLayout.length && !options.allowPartial) {
      throw new DeltacError(
        'DELTAC_E_SPATIAL_DIMS',
        `${noLayout.length} self-attention layer(s) have tokens that are not the flattening of a [B, C, H, W] tensor, so H and W are unknown: ${noLayout.map((l) => `layer ${l.id} (reads ${selfs[l.index]!.input.name})`).join('; ')}; nothing was converted (pass --allow-partial to keep their attention and convert the others)`,
        { layers: noLayout.map((l) => l.id) },
      );
    }
    let converted = 0;
    selfs.forEach((match, i) => {
      const layer = layers[i]!;
      // onnxruntime-optimized graphs may leave the input untyped: the projection weights then say it.
      const dtype = ctx.dtype(match.input) || ctx.dtype(match.weights[0]);
      const quant = match.quantization;
      const floatType = quant?.input ? ctx.dtype(quant.input.scale) : dtype;
      const base: LayerReport = {
        id: layer.id,
        modulePath: match.modulePath,
        blockPath: match.blockPath,
        status: 'kept',
        pattern: match.pattern,
        channels: match.channels,
        heads: match.heads,
        dtype: dtypeName(floatType),
      };
      if (quant) {
        base.quantization = {
          forms: quant.forms,
          input: quant.input ? `${dtypeName(ctx.dtype(match.input))} (dequantized)` : dtypeName(dtype),
          output: quant.output ? `${dtypeName(ctx.dtype(match.output))} (quantized again)` : dtypeName(ctx.dtype(match.output)),
          block: dtypeName(floatType),
        };
      }
      if (quant?.problem) {
        report.layers.push({ ...base, reason: `quantization not readable: ${quant.problem}` });
        diagnostics.push(warning('DELTAC_W_QUANTIZED', `layer ${layer.id} keeps its self-attention: ${quant.problem}`, layer.id));
        return;
      }
      const bound = binding.bound.get(layer.id);
      if (!bound) {
        report.layers.push({ ...base, reason: 'no weights in the checkpoint (--allow-partial)' });
        diagnostics.push(warning('DELTAC_W_PARTIAL', `layer ${layer.id} keeps its self-attention: no weights in the checkpoint`, layer.id));
        return;
      }
      if (!isConvertibleDtype(floatType)) {
        throw new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `layer ${layer.id}: attention input has element type ${dtypeName(floatType)}; deltac converts f32, f16 and bf16 models (and quantized ones whose scales are)`);
      }
      const source = spatial.get(match.input);
      if (!source) {
        report.layers.push({ ...base, reason: 'no 2-D layout: its tokens are not the flattening of a [B, C, H, W] tensor (--allow-partial)' });
        diagnostics.push(warning('DELTAC_W_PARTIAL', `layer ${layer.id} keeps its self-attention: its ${match.input.name} tokens have no 2-D layout (DELTAC_E_SPATIAL_DIMS)`, layer.id));
        return;
      }
      const geometry = options.checkpoint.geometry(bound.block, layer.id);
      if (match.channels !== null && geometry.channels !== match.channels) {
        throw new DeltacError(
          'DELTAC_E_WEIGHT_SHAPE',
          `layer ${layer.id}: "${bound.block.prefix}.conv1.conv_up.weight" is [${geometry.inner}, ${geometry.channels}], expected [Ci, ${match.channels}] (the layer has ${match.channels} channels); is the checkpoint for another model?`,
          { layer: layer.id, key: `${bound.block.prefix}.conv1.conv_up.weight`, actual: [geometry.inner, geometry.channels], expectedChannels: match.channels },
        );
      }
      const gate = options.gate ?? DEFAULT_GATE[source.family];
      const scales = resolveScales(options.scales, geometry, layer.id);
      const tensors = options.checkpoint.read(bound.block);
      const name = `${match.modulePath ?? layer.id}/PyramidConvBlock`;
      const inserted = insertBlock(model.graph, match, source, tensors, geometry, {
        gate,
        scales,
        dtype: floatType,
        outputDtype: quant?.output ? ctx.dtype(quant.output.scale) : ctx.dtype(match.output),
        opset,
        name,
        modulePath: match.modulePath ?? layer.id,
      });
      converted++;
      const s4 = ctx.shape(source.tensor);
      report.layers.push({
        ...base,
        status: 'converted',
        checkpointBlock: bound.block.prefix,
        binding: bound.method,
        family: source.family,
        hwSource: source.description,
        hw: [s4?.[source.hAxis] ?? null, s4?.[source.wAxis] ?? null],
        inner: geometry.inner,
        kernel: geometry.kernel,
        scales,
        gate,
        node: inserted.node,
        hwValue: inserted.hw,
        staticHW: source.static ?? undefined,
        tokensValue: inserted.tokens,
        outputValue: inserted.output,
        ...(inserted.quantizedTokens ? { quantizedTokensValue: inserted.quantizedTokens } : {}),
        ...(inserted.quantizedOutput ? { quantizedOutputValue: inserted.quantizedOutput } : {}),
        ...(source.static ? {} : { hwSourceValue: source.tensor.name, hwAxes: [source.hAxis, source.wAxis] as [number, number] }),
      });
    });
    if (binding.unusedBlocks.length) {
      diagnostics.push(warning('DELTAC_W_PARTIAL', `${binding.unusedBlocks.length} checkpoint block(s) were not used: ${preview(binding.unusedBlocks)}`));
    }
    if (converted) model.requireOpset(PYRAMID_CONV_DOMAIN, PYRAMID_CONV_OPSET);
    return { changed: converted > 0, diagnostics, stats: { converted, kept: selfs.length - converted, crossAttention: report.crossAttention }, data: report };
  },
};

/** The self-attention layers (in graph order) as the checkpoint binding names them. */
export function selfAttentionRefs(selfs: AttentionMatch[]): LayerRef[] {
  return selfs.map((m, index) => ({
    id: m.blockPath ?? m.modulePath ?? `layer${index}`,
    blockPath: m.blockPath,
    modulePath: m.modulePath,
    index,
  }));
}

function preview(items: string[], n = 3): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')}, … (${items.length} in all)`;
}

/** The gates' scales: the given ones (one per gate of the checkpoint's block), else 1, ½, ¼ …. */
export function resolveScales(given: number[] | undefined, g: BlockGeometry, layer: string): number[] {
  if (given) {
    if (given.length !== g.gates) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', `--scales gives ${given.length} scale(s) but layer ${layer} has ${g.gates} gate(s) in the checkpoint`);
    }
    return given;
  }
  return Array.from({ length: g.gates }, (_, i) => 1 / 2 ** i);
}

interface BlockSettings {
  gate: GateKind;
  scales: number[];
  dtype: DataType;
  /** Element type the module's readers expect (a Cast is added when it differs). */
  outputDtype: DataType;
  opset: number;
  name: string;
  modulePath: string;
}

/** QuantizeLinear / DequantizeLinear of `x` with a module's quantization parameters. */
function quantizeStep(g: Graph, op: 'QuantizeLinear' | 'DequantizeLinear', x: Value, p: QuantParams, name: string): Value {
  const args = p.zeroPoint ? [x, p.scale, p.zeroPoint] : [x, p.scale];
  return g.op(op, args, { name, domain: p.domain, ...(p.axis !== undefined ? { attributes: { axis: { type: 'int', value: p.axis } } } : {}) });
}

/** Adds the initializers and the PyramidConvBlock node for one layer; rewires the module's readers. */
function insertBlock(
  g: Graph,
  match: AttentionMatch,
  source: SpatialSource,
  t: BlockTensors,
  geo: BlockGeometry,
  s: BlockSettings,
): { node: string; hw: string; tokens: string; output: string; quantizedTokens?: string; quantizedOutput?: string } {
  const init = (suffix: string, tensor: Tensor, dims?: number[]) => {
    const cast = tensor.castTo(s.dtype);
    if (dims) cast.dims = dims;
    return g.addInitializer(`${s.modulePath}.delta.${suffix}`, cast);
  };
  const gateData = stackedGates(t, geo);
  const hw = emitHW(g, source, s.opset, s.name);
  // A module that read a quantized tensor: the block reads it dequantized (the module's own scale and zero point).
  const q = match.quantization;
  const input = q?.input ? quantizeStep(g, 'DequantizeLinear', match.input, q.input, `${s.name}/dequantize_input`) : match.input;
  const inputs: Value[] = [
    input,
    hw,
    init('conv_up.weight', t.upWeight),
    init('conv_up.bias', t.upBias),
    init('gates.conv_spatial.weight', Tensor.fromFloat32(gateData, [geo.gates, geo.kernel, geo.kernel, geo.inner])),
    init('conv_out.weight', t.outWeight),
    init('conv_out.bias', t.outBias),
    init('conv_pool.weight', t.poolWeight),
    init('conv_pool.bias', t.poolBias),
  ];
  const node = g.addNode(PYRAMID_CONV_OP, inputs, {
    domain: PYRAMID_CONV_DOMAIN,
    name: s.name,
    outputs: [`${s.name}_output_0`],
    attributes: {
      kernel_size: { type: 'int', value: geo.kernel },
      scales: { type: 'floats', value: s.scales.map(Math.fround) },
      gate: { type: 'string', value: s.gate },
      module_path: { type: 'string', value: s.modulePath },
    },
  });
  let out = node.outputs[0]!;
  if (s.outputDtype !== s.dtype && s.outputDtype !== DataType.UNDEFINED) {
    out = g.op('Cast', [out], { name: `${s.name}/cast`, attributes: { to: { type: 'int', value: s.outputDtype } } });
  }
  // A module whose readers read a quantized tensor: quantized again with the module's output scale and zero point.
  const blockOutput = out;
  if (q?.output) out = quantizeStep(g, 'QuantizeLinear', out, q.output, `${s.name}/quantize_output`);
  match.output.replaceAllUsesWith(out);
  // to_out's bias that an optimizer moved into the next node is part of the replaced module.
  const fused = match.absorbedBias;
  if (fused) {
    fused.node.setInput(fused.index, null);
    while (fused.node.inputs.length && fused.node.inputs[fused.node.inputs.length - 1] === null) fused.node.inputs.pop();
  }
  // The block's float edges; the quantized values around them when the module read or wrote one.
  return {
    node: node.name,
    hw: hw.name,
    tokens: input.name,
    output: blockOutput.name,
    ...(input !== match.input ? { quantizedTokens: match.input.name } : {}),
    ...(out !== blockOutput ? { quantizedOutput: out.name } : {}),
  };
}
