/**
 * Lowers `ai.deltac.PyramidConvBlock` to standard ONNX ops (opset ≥ 13) so any
 * runtime runs the converted model:
 *
 *   U  = x·Wupᵀ + bup                       MatMul, Add           [B,N,Ci]
 *   Uc = NCHW(U)                             Reshape, Transpose    [B,Ci,H,W]
 *   per gate g:
 *     V = s_g = 1 ? Uc : AdaptiveAvgPool     AveragePool, or the exact forms below
 *     D = depthwise KxK conv                 Conv(group = Ci)
 *     G = A·B·√(Ci/2)  |  A·sigmoid(B)       Split, Mul [, Sigmoid]  (√(Ci/2) is folded into B's weights)
 *     G = s_g = 1 ? G : bilinear upsample    Resize(linear, half_pixel)
 *   Y  = concat_g(G)·Woutᵀ + bout            Concat, Transpose, MatMul, Add, Reshape(Shape(x))
 *   P  = mean_N(x)·Wpoolᵀ + bpool            ReduceMean, MatMul, Add
 *   out = Y + P
 *
 * Adaptive average pooling is exact for every size: uniform windows become one
 * AveragePool; s = 1/2 with run-time sizes uses windows of 2 (even) or 3 (odd),
 * computed branch-free; anything else multiplies by averaging matrices built from
 * H and W (constants when static, Range/compare ops otherwise).
 */
import { DataType, byteSizeOf } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import { GraphBuilder } from '../builder.js';
import type { Pass, PassResult } from '../pass-manager.js';
import {
  PYRAMID_CONV_DOMAIN,
  PYRAMID_CONV_OP,
  PyramidInput,
  type PyramidConvConfig,
  adaptiveWindows,
  isPyramidConvBlock,
  pyramidConvConfig,
} from './op.js';

export const lowerPyramidConvPass: Pass = {
  name: 'lower-pyramid-conv',
  description: 'expand ai.deltac.PyramidConvBlock into standard ONNX operators',
  run(model): PassResult {
    const opset = model.opset('') ?? 0;
    const blocks = model.graph.nodes.filter(isPyramidConvBlock);
    if (blocks.length && opset < 13) {
      throw new DeltacError('DELTAC_E_OPSET', `lowering needs ONNX opset ≥ 13; the model imports opset ${opset}`);
    }
    const scratch = new Scratch(); // one source buffer for every deferred transpose of this run (computed one at a time)
    // Which value took each block's output's place (by block name): the conversion records it for the per-layer check.
    const outputs: Record<string, string> = {};
    for (const node of blocks) outputs[node.outputs[0]!.name] = lowerBlock(model, node, scratch);
    if (blocks.length && ![...model.graph.allNodes()].some(isPyramidConvBlock)) {
      model.opsetImports.delete(PYRAMID_CONV_DOMAIN);
      // the functions that defined the op for runtimes without its kernel have no caller left
      model.functions = model.functions.filter((f) => f.domain !== PYRAMID_CONV_DOMAIN || f.name !== PYRAMID_CONV_OP);
    }
    return { changed: blocks.length > 0, diagnostics: [], stats: { lowered: blocks.length }, data: { outputs } satisfies LoweringData };
  },
};

export interface LoweringData {
  /** The name of each lowered block's output → the name of the value that computes it now. */
  outputs: Record<string, string>;
}

/**
 * The block's weights in the layouts its ops read. The lowering takes them from the
 * node's initializers, re-laid out once at compile time (`constantWeights`); a function
 * body, whose weights are parameters, computes the same layouts with ops (`parameterWeights`).
 */
export interface BlockWeights {
  /** conv_up.weight [Ci, C]. */
  up(): Value;
  /** conv_up.weightᵀ [C, Ci]. */
  upT(): Value;
  /** conv_up.bias [Ci]. */
  upBias(): Value;
  /** conv_up.bias as a column [Ci, 1]. */
  upBiasColumn(): Value;
  /** Gate g's depthwise weights [Ci, 1, K, K]; for the simple gate, B's half carries √(Ci/2). */
  gateConv(gate: number): Value;
  /** conv_pool.weightᵀ [C, C]. */
  poolT(): Value;
  /** conv_pool.bias + conv_out.bias [C]. */
  poolOutBias(): Value;
  /** conv_out.weightᵀ as [1, S·Ci/2, C]. */
  outT(): Value;
}

/** Static (H, W) when the block's hw input is a constant. */
function staticHW(hw: Value): [number, number] | null {
  const t = hw.initializer;
  if (!t || t.storage.kind !== 'inline') return null;
  const v = t.toNumbers();
  return v.length === 2 ? [v[0]!, v[1]!] : null;
}

function lowerBlock(model: Model, node: Node, scratch: Scratch): string {
  const g = model.graph;
  const cfg = pyramidConvConfig(node);
  const b = new GraphBuilder(g, node.name || 'PyramidConvBlock');
  const weight = (i: PyramidInput) => {
    const v = node.inputs[i];
    if (!v?.initializer) throw new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `PyramidConvBlock "${node.name}": input ${i} must be an initializer`);
    return v.initializer;
  };
  const dtype = weight(PyramidInput.UpWeight).dtype;
  const out = emitPyramidConvBlock(b, node.inputs[PyramidInput.X]!, node.inputs[PyramidInput.HW]!, cfg, dtype, constantWeights(b, weight, cfg, dtype, scratch));
  node.outputs[0]!.replaceAllUsesWith(out);
  const consumed = node.inputs.filter((v): v is Value => v !== null && v.isInitializer);
  g.removeNode(node);
  // The block's own weights were re-laid out; drop the originals nobody reads now.
  for (const v of consumed) if (!v.uses.length && !v.isGraphOutput && !v.isGraphInput) g.removeInitializer(v);
  return out.name;
}

/**
 * The ΔConvBlock as standard ONNX ops on tokens `x` [B, N, C] and `hw` (int64 [H, W]; a
 * constant selects the static forms), reading the weights through `w`. Returns [B, N, C].
 * The lowering and the op's model-local function are both this code.
 */
export function emitPyramidConvBlock(b: GraphBuilder, x: Value, hw: Value, cfg: PyramidConvConfig, dtype: DataType, w: BlockWeights): Value {
  const { inner: Ci, scales, gate } = cfg;
  const half = Ci / 2;
  const S = scales.length;
  const stat = staticHW(hw);

  const ut = convUpChannelsFirst(b, x, w, cfg.channels);
  const shape4 = stat ? b.int64([0, Ci, stat[0], stat[1]]) : b.op('Concat', [b.int64([0, Ci]), hw], { axis: 0 }, 'nchw_shape');
  const uc = b.op('Reshape', [ut, shape4], {}, 'to_nchw');

  const gates: Value[] = [];
  for (let gi = 0; gi < S; gi++) {
    const s = scales[gi]!;
    const label = `gate${gi}`;
    const v = s === 1 ? uc : adaptivePool(b, uc, hw, stat, s, dtype, label);
    const K = cfg.kernel;
    const p = Math.floor(K / 2);
    const d = b.op('Conv', [v, w.gateConv(gi)], { group: Ci, kernel_shape: [K, K], pads: [p, p, p, p], strides: [1, 1], dilations: [1, 1] }, `${label}/Conv`);
    const [a, bh] = b.multi('Split', [d, b.int64([half, half])], 2, { axis: 1 }, `${label}/Split`);
    let gv = gate === 'simple' ? b.op('Mul', [a!, bh!], {}, `${label}/Mul`) : b.op('Mul', [a!, b.op('Sigmoid', [bh!], {}, `${label}/Sigmoid`)], {}, `${label}/Mul`);
    if (s !== 1) gv = upsample(b, gv, hw, stat, label);
    gates.push(gv);
  }
  // conv_pool on the token mean, as a GEMV (ReduceMean over N is slow on CPU): mean = (1/N)·1ᵀx.
  // Both biases (conv_out's and conv_pool's) join the [B, 1, C] pooled term.
  const mean = tokenMean(b, x, stat, dtype);
  let pool = b.op('MatMul', [mean, w.poolT()], {}, 'conv_pool/MatMul');
  pool = b.op('Add', [pool, w.poolOutBias()], {}, 'conv_pool/Add');
  // conv_out and the pooled term in one GEMM: a channel of ones joins the gates, and the
  // pooled term joins Woutᵀ as its last row, per batch:
  //   out = [G | 1]ᵀ · [Woutᵀ ; P]   ([B, N, S·Ci/2 + 1] × [B, S·Ci/2 + 1, C] → [B, N, C]).
  // The Transpose fuses into the GEMM, so Y + P never exists as a separate pass over memory.
  const batch = b.op('Slice', [b.op('Shape', [x], {}, 'tokens_shape'), b.int64([0]), b.int64([1])], {}, 'batch');
  const onesShape = b.op('Concat', [batch, b.int64([1]), stat ? b.int64(stat) : hw], { axis: 0 }, 'ones_shape');
  const ones = b.op('Expand', [b.float([1], [1, 1, 1, 1], dtype, 'one'), onesShape], {}, 'ones');
  const cat = b.op('Concat', [...gates, ones], { axis: 1 }, 'concat');
  const k = S * half + 1;
  const g3 = b.op('Reshape', [cat, b.int64([0, k, -1])], {}, 'gates_flat');
  const wShape = b.op('Concat', [batch, b.int64([S * half, cfg.channels])], { axis: 0 }, 'conv_out/weight_shape');
  const wOut = b.op('Expand', [w.outT(), wShape], {}, 'conv_out/weight');
  const wAug = b.op('Concat', [wOut, pool], { axis: 1 }, 'conv_out/weight_and_pool');
  return b.op('MatMul', [b.op('Transpose', [g3], { perm: [0, 2, 1] }, 'gates_t'), wAug], {}, 'conv_out/MatMul');
}

/** The weights from the node's initializers, re-laid out now (each made when the lowering first reads it). */
function constantWeights(b: GraphBuilder, weight: (i: PyramidInput) => Tensor, cfg: PyramidConvConfig, dtype: DataType, scratch: Scratch): BlockWeights {
  const { inner: Ci, kernel: K } = cfg;
  const half = Ci / 2;
  let gateW: Float32Array | undefined;
  return {
    up: () => b.tensor(weight(PyramidInput.UpWeight), 'conv_up.weight'),
    upT: () => b.tensor(transpose2d(weight(PyramidInput.UpWeight), dtype, scratch), 'conv_up.weight_t'),
    upBias: () => b.tensor(weight(PyramidInput.UpBias), 'conv_up.bias'),
    upBiasColumn: () => b.tensor(reshapeTensor(weight(PyramidInput.UpBias), [Ci, 1]), 'conv_up.bias_col'),
    gateConv: (gi) => {
      // [K, K, Ci] (HWC) → [Ci, 1, K, K]; the simple gate's √(Ci/2) goes into B's weights.
      gateW ??= weight(PyramidInput.GateWeights).readFloat32();
      const w = new Float32Array(Ci * K * K);
      const scaleB = cfg.gate === 'simple' ? Math.sqrt(half) : 1;
      for (let c = 0; c < Ci; c++) {
        for (let i = 0; i < K; i++) {
          for (let j = 0; j < K; j++) {
            const val = gateW[gi * K * K * Ci + (i * K + j) * Ci + c]!;
            w[c * K * K + i * K + j] = c >= half ? val * scaleB : val;
          }
        }
      }
      return b.tensor(Tensor.fromFloat32(w, [Ci, 1, K, K], dtype), `gate${gi}.conv_spatial.weight`);
    },
    poolT: () => b.tensor(transpose2d(weight(PyramidInput.PoolWeight), dtype, scratch), 'conv_pool.weight_t'),
    poolOutBias: () => b.tensor(addTensors(weight(PyramidInput.PoolBias), weight(PyramidInput.OutBias), dtype), 'conv_pool_out.bias'),
    outT: () => {
      const t = transpose2d(weight(PyramidInput.OutWeight), dtype, scratch);
      return b.tensor(reshapeTensor(t, [1, ...t.dims]), 'conv_out.weight_t');
    },
  };
}

/**
 * The weights as values of the block's inputs `params` (in PyramidInput order), re-laid
 * out by ops: what a function body, whose weights are parameters, does.
 */
export function parameterWeights(b: GraphBuilder, params: Value[], cfg: PyramidConvConfig, dtype: DataType): BlockWeights {
  const { inner: Ci } = cfg;
  const half = Ci / 2;
  const param = (i: PyramidInput) => params[i]!;
  const transpose = (v: Value, label: string) => b.op('Transpose', [v], { perm: [1, 0] }, label);
  return {
    up: () => param(PyramidInput.UpWeight),
    upT: () => transpose(param(PyramidInput.UpWeight), 'conv_up.weight_t'),
    upBias: () => param(PyramidInput.UpBias),
    upBiasColumn: () => b.op('Unsqueeze', [param(PyramidInput.UpBias), b.int64([1])], {}, 'conv_up.bias_col'),
    gateConv: (gi) => {
      // [S, K, K, Ci] → gate gi's [K, K, Ci] → [Ci, K, K] → [Ci, 1, K, K]
      const hwc = b.op('Gather', [param(PyramidInput.GateWeights), b.int64([gi], [])], { axis: 0 }, `gate${gi}.conv_spatial.weight_hwc`);
      const chw = b.op('Transpose', [hwc], { perm: [2, 0, 1] }, `gate${gi}.conv_spatial.weight_chw`);
      const w = b.op('Unsqueeze', [chw, b.int64([1])], {}, `gate${gi}.conv_spatial.weight`);
      if (cfg.gate !== 'simple') return w;
      // × √(Ci/2) on B's half in double, rounded once to the weights' type: the very weights the lowering computes
      const scale = new Tensor(DataType.DOUBLE, [Ci, 1, 1, 1], { kind: 'inline', encoding: 'raw', bytes: new Uint8Array(Float64Array.from({ length: Ci }, (_, c) => (c >= half ? Math.sqrt(half) : 1)).buffer) });
      const w64 = b.op('Cast', [w], { to: DataType.DOUBLE }, `gate${gi}.conv_spatial.weight_f64`);
      const scaled = b.op('Mul', [w64, b.tensor(scale, `gate${gi}.b_scale`)], {}, `gate${gi}.conv_spatial.weight_scaled_f64`);
      return b.op('Cast', [scaled], { to: dtype }, `gate${gi}.conv_spatial.weight_scaled`);
    },
    poolT: () => transpose(param(PyramidInput.PoolWeight), 'conv_pool.weight_t'),
    poolOutBias: () => b.op('Add', [param(PyramidInput.PoolBias), param(PyramidInput.OutBias)], {}, 'conv_pool_out.bias'),
    outT: () => b.op('Unsqueeze', [transpose(param(PyramidInput.OutWeight), 'conv_out.weight_t2d'), b.int64([0])], {}, 'conv_out.weight_t'),
  };
}

/** Channel counts from which conv_up runs as a plain GEMM plus a transpose (see below). */
const PLAIN_CONV_UP_FROM_CHANNELS = 1024;

/**
 * conv_up into channels-first layout, Uᵀ [B, Ci, N]. For most layers as
 * Wup · xᵀ ([Ci, C] × [B, C, N]): onnxruntime fuses the Transpose into the GEMM
 * (FusedMatMul, transB), so xᵀ is never copied. For wide layers (C ≥ 1024, which
 * sit at the small resolutions) that fused GEMM measured ~40% slower than a plain
 * x · Wupᵀ followed by a transpose of the small result (16×16×1280: 1.76 ms vs
 * 1.33 ms), so those use the plain form.
 */
function convUpChannelsFirst(b: GraphBuilder, x: Value, w: BlockWeights, channels: number): Value {
  if (channels >= PLAIN_CONV_UP_FROM_CHANNELS) {
    const u = b.op('MatMul', [x, w.upT()], {}, 'conv_up/MatMul');
    return b.op('Transpose', [b.op('Add', [u, w.upBias()], {}, 'conv_up/Add')], { perm: [0, 2, 1] }, 'conv_up/to_channels_first');
  }
  const xt = b.op('Transpose', [x], { perm: [0, 2, 1] }, 'conv_up/tokens_t');
  const ut = b.op('MatMul', [w.up(), xt], {}, 'conv_up/MatMul');
  return b.op('Add', [ut, w.upBiasColumn()], {}, 'conv_up/Add');
}

/** mean over tokens, [B, N, C] → [B, 1, C], as (1/N)·1ᵀ·x (a GEMV). */
function tokenMean(b: GraphBuilder, x: Value, stat: [number, number] | null, dtype: DataType): Value {
  if (stat) {
    const n = stat[0] * stat[1];
    return b.op('MatMul', [b.float(new Float32Array(n).fill(1 / n), [1, n], dtype, 'mean_row'), x], {}, 'conv_pool/mean');
  }
  const n = b.op('Gather', [b.op('Shape', [x], {}, 'conv_pool/shape'), b.int64([1])], { axis: 0 }, 'conv_pool/n');
  const ones = b.op('ConstantOfShape', [b.op('Concat', [b.int64([1]), n], { axis: 0 }, 'conv_pool/ones_shape')], { value: { type: 'tensor', value: Tensor.fromFloat32([1], [1], dtype) } }, 'conv_pool/ones');
  const sum = b.op('MatMul', [ones, x], {}, 'conv_pool/sum');
  return b.op('Div', [sum, b.op('Cast', [n], { to: dtype }, 'conv_pool/n_f')], {}, 'conv_pool/mean');
}

function reshapeTensor(t: Tensor, dims: number[]): Tensor {
  const copy = new Tensor(t.dtype, dims, t.storage);
  return copy;
}

function addTensors(a: Tensor, b: Tensor, dtype: DataType): Tensor {
  const x = a.toFloat32();
  const y = b.toFloat32();
  return Tensor.fromFloat32(x.map((v, i) => v + y[i]!), [...a.dims], dtype);
}

/** A reusable buffer (grown as needed). */
class Scratch {
  private buf: Uint8Array | undefined;
  get(length: number): Uint8Array {
    if (!this.buf || this.buf.length < length) this.buf = Buffer.allocUnsafeSlow(length);
    return this.buf;
  }
}

/**
 * [r, c] → [c, r]. Of a weight that is not in memory (a checkpoint tensor left in
 * its file), a deferred tensor: the transpose runs when the saver writes it, reading
 * the source into `scratch` and writing into the saver's buffer.
 */
function transpose2d(t: Tensor, dtype: DataType, scratch: Scratch): Tensor {
  const [r, c] = t.dims as [number, number];
  const size = byteSizeOf(dtype, 1);
  if (t.dtype !== dtype || ![1, 2, 4, 8].includes(size)) {
    const src = t.readFloat32();
    return Tensor.fromFloat32(transposeWords(src, new Float32Array(r * c), r, c), [c, r], dtype);
  }
  const s = t.storage;
  if (s.kind === 'inline') return new Tensor(dtype, [c, r], { kind: 'inline', bytes: transposeBytes(s.bytes, r, c, size), encoding: 'raw' });
  const from = s.kind === 'deferred' ? s.description : s.kind === 'external' ? `"${s.location}"` : 'a weight';
  return Tensor.deferred(dtype, [c, r], (into) => transposeBytes(t.bytes(scratch.get(t.byteLength)), r, c, size, into), {
    description: `${from}, transposed`,
    finite: s.kind === 'deferred' && s.finite === true,
  });
}

/** Transposes r×c elements of `size` bytes, bit for bit. */
export function transposeBytes(b: Uint8Array, r: number, c: number, size: number, into?: Uint8Array): Uint8Array {
  // a copy at offset 0 when unaligned (Buffer.slice would be a view at the same offset)
  const aligned = b.byteOffset % size === 0 ? b : new Uint8Array(b);
  const n = r * c;
  // every byte is written below; a fresh buffer is its own ArrayBuffer (never the shared pool)
  const out = into && into.byteOffset % size === 0 && into.length >= n * size ? into.subarray(0, n * size) : Buffer.allocUnsafeSlow(n * size);
  const at = (a: Uint8Array) => [a.buffer, a.byteOffset, n] as const;
  if (size === 2) transpose16(new Uint16Array(...at(aligned)), new Uint16Array(...at(out)), r, c);
  else if (size === 4) transpose32(new Uint32Array(...at(aligned)), new Uint32Array(...at(out)), r, c);
  else if (size === 8) transposeWords(new Float64Array(...at(aligned)), new Float64Array(...at(out)), r, c);
  else transposeWords(aligned.subarray(0, n), out, r, c);
  return out;
}

type Words = Uint8Array | Uint16Array | Uint32Array | Float32Array | Float64Array;

// In 32×32 tiles: a plain row-by-row transpose of a 1280×1280 weight thrashes the cache.
// One copy per element type keeps each loop monomorphic (a shared generic one ran ~10 ns per element).
const TILE = 32;

function transpose16(src: Uint16Array, dst: Uint16Array, r: number, c: number): void {
  for (let i0 = 0; i0 < r; i0 += TILE) {
    const iEnd = Math.min(i0 + TILE, r);
    for (let j0 = 0; j0 < c; j0 += TILE) {
      const jEnd = Math.min(j0 + TILE, c);
      for (let i = i0; i < iEnd; i++) {
        const row = i * c;
        for (let j = j0; j < jEnd; j++) dst[j * r + i] = src[row + j]!;
      }
    }
  }
}

function transpose32(src: Uint32Array, dst: Uint32Array, r: number, c: number): void {
  for (let i0 = 0; i0 < r; i0 += TILE) {
    const iEnd = Math.min(i0 + TILE, r);
    for (let j0 = 0; j0 < c; j0 += TILE) {
      const jEnd = Math.min(j0 + TILE, c);
      for (let i = i0; i < iEnd; i++) {
        const row = i * c;
        for (let j = j0; j < jEnd; j++) dst[j * r + i] = src[row + j]!;
      }
    }
  }
}

/** [r, c] → [c, r] of any element type, in TILE×TILE tiles. */
export function transposeWords<T extends Words>(src: T, dst: T, r: number, c: number): T {
  for (let i0 = 0; i0 < r; i0 += TILE) {
    for (let j0 = 0; j0 < c; j0 += TILE) {
      const iEnd = Math.min(i0 + TILE, r);
      const jEnd = Math.min(j0 + TILE, c);
      for (let i = i0; i < iEnd; i++) for (let j = j0; j < jEnd; j++) dst[j * r + i] = src[i * c + j]!;
    }
  }
  return dst;
}

/** Kernel and stride when every window has the same size and a constant step. */
function uniformWindows(w: [number, number][]): { kernel: number; stride: number } | null {
  const kernel = w[0]![1] - w[0]![0];
  const stride = w.length > 1 ? w[1]![0] - w[0]![0] : 1;
  const ok = w.every(([s, e], i) => e - s === kernel && s === i * stride);
  return ok ? { kernel, stride: Math.max(stride, 1) } : null;
}

function adaptivePool(b: GraphBuilder, x: Value, hw: Value, stat: [number, number] | null, s: number, dtype: DataType, label: string): Value {
  if (stat) {
    const [H, W] = stat;
    const Ho = Math.floor(H * s);
    const Wo = Math.floor(W * s);
    if (Ho < 1 || Wo < 1) {
      throw new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `scale ${s} turns a ${H}×${W} layer into an empty ${Ho}×${Wo} grid`);
    }
    const wh = adaptiveWindows(H, Ho);
    const ww = adaptiveWindows(W, Wo);
    const uh = uniformWindows(wh);
    const uw = uniformWindows(ww);
    if (uh && uw) {
      return b.op('AveragePool', [x], { kernel_shape: [uh.kernel, uw.kernel], strides: [uh.stride, uw.stride], pads: [0, 0, 0, 0] }, `${label}/AveragePool`);
    }
    const ph = b.float(poolMatrix(wh, H), [Ho, H], dtype, `${label}.pool_rows`);
    const pwT = b.float(transposeFlat(poolMatrix(ww, W), Wo, W), [W, Wo], dtype, `${label}.pool_cols`);
    return b.op('MatMul', [ph, b.op('MatMul', [x, pwT], {}, `${label}/pool_cols`)], {}, `${label}/pool_rows`);
  }
  if (s === 0.5) return halfPoolRuntime(b, x, dtype, label);
  // General run-time sizes: averaging matrices built from H and W.
  const rows = runtimePoolMatrix(b, hw, 0, s, dtype, `${label}/rows`); // [Ho, H]
  const cols = runtimePoolMatrix(b, hw, 1, s, dtype, `${label}/cols`); // [Wo, W]
  const colsT = b.op('Transpose', [cols], { perm: [1, 0] }, `${label}/cols_t`);
  return b.op('MatMul', [rows, b.op('MatMul', [x, colsT], {}, `${label}/pool_cols`)], {}, `${label}/pool_rows`);
}

function poolMatrix(windows: [number, number][], size: number): Float32Array {
  const m = new Float32Array(windows.length * size);
  windows.forEach(([s, e], i) => {
    for (let k = s; k < e; k++) m[i * size + k] = 1 / (e - s);
  });
  return m;
}

function transposeFlat(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

/**
 * Adaptive pooling to floor(size/2) along H then W, for sizes known only at run
 * time. PyTorch's windows are [2i, 2i+2) for an even size and [2i, 2i+3) for an
 * odd one, so out = (2·avgpool2(x) + odd·x[2i+2]) / (2 + odd).
 */
function halfPoolRuntime(b: GraphBuilder, x: Value, dtype: DataType, label: string): Value {
  const axis = (v: Value, ax: 2 | 3, tag: string): Value => {
    const kernel = ax === 2 ? [2, 1] : [1, 2];
    const avg = b.op('AveragePool', [v], { kernel_shape: kernel, strides: kernel, pads: [0, 0, 0, 0] }, `${tag}/AveragePool`);
    const size = b.op('Gather', [b.op('Shape', [v], {}, `${tag}/Shape`), b.int64([ax], [])], { axis: 0 }, `${tag}/size`);
    const odd = b.op('Cast', [b.op('Mod', [size, b.int64([2], [])], {}, `${tag}/odd`)], { to: dtype }, `${tag}/odd_f`);
    const pads = ax === 2 ? [0, 0, 0, 0, 0, 0, 1, 0] : [0, 0, 0, 0, 0, 0, 0, 1];
    const padded = b.op('Pad', [v, b.int64(pads)], { mode: 'constant' }, `${tag}/Pad`);
    const third = b.op('Slice', [padded, b.int64([2]), b.int64([2 ** 62]), b.int64([ax]), b.int64([2])], {}, `${tag}/third`);
    const two = b.float([2], [], dtype, `${tag}.two`);
    const sum = b.op('Add', [b.op('Mul', [avg, two], {}, `${tag}/sum2`), b.op('Mul', [third, odd], {}, `${tag}/odd_row`)], {}, `${tag}/sum`);
    return b.op('Div', [sum, b.op('Add', [two, odd], {}, `${tag}/count`)], {}, `${tag}/mean`);
  };
  return axis(axis(x, 2, `${label}/pool_h`), 3, `${label}/pool_w`);
}

/** [out, size] averaging matrix of PyTorch adaptive pooling, from a run-time size. */
function runtimePoolMatrix(b: GraphBuilder, hw: Value, index: 0 | 1, s: number, dtype: DataType, tag: string): Value {
  const size = b.op('Gather', [hw, b.int64([index], [])], { axis: 0 }, `${tag}/size`);
  const sizeF = b.op('Cast', [size], { to: DataType.FLOAT }, `${tag}/size_f`);
  const out = b.op('Cast', [b.op('Floor', [b.op('Mul', [sizeF, b.float([s], [], DataType.FLOAT, `${tag}.scale`)], {}, `${tag}/scaled`)], {}, `${tag}/floor`)], { to: DataType.INT64 }, `${tag}/out`);
  const zero = b.int64([0], []);
  const one = b.int64([1], []);
  const i = b.op('Range', [zero, out, one], {}, `${tag}/cells`);
  const start = b.op('Div', [b.op('Mul', [i, size], {}, `${tag}/i_size`), out], {}, `${tag}/start`);
  const next = b.op('Mul', [b.op('Add', [i, one], {}, `${tag}/i1`), size], {}, `${tag}/i1_size`);
  const end = b.op('Div', [b.op('Sub', [b.op('Add', [next, out], {}, `${tag}/ceil_num`), one], {}, `${tag}/ceil_num1`), out], {}, `${tag}/end`);
  const col = b.op('Range', [zero, size, one], {}, `${tag}/positions`);
  const startC = b.op('Unsqueeze', [start, b.int64([1])], {}, `${tag}/start_col`);
  const endC = b.op('Unsqueeze', [end, b.int64([1])], {}, `${tag}/end_col`);
  const inside = b.op('And', [b.op('GreaterOrEqual', [col, startC], {}, `${tag}/ge`), b.op('Less', [col, endC], {}, `${tag}/lt`)], {}, `${tag}/inside`);
  const count = b.op('Cast', [b.op('Sub', [endC, startC], {}, `${tag}/count`)], { to: dtype }, `${tag}/count_f`);
  return b.op('Div', [b.op('Cast', [inside], { to: dtype }, `${tag}/mask`), count], {}, `${tag}/matrix`);
}

/** Bilinear upsampling to (H, W), align_corners = False (ONNX Resize, half_pixel). */
function upsample(b: GraphBuilder, x: Value, hw: Value, stat: [number, number] | null, label: string): Value {
  const nc = b.op('Slice', [b.op('Shape', [x], {}, `${label}/shape`), b.int64([0]), b.int64([2])], {}, `${label}/nc`);
  const sizes = b.op('Concat', [nc, stat ? b.int64(stat) : hw], { axis: 0 }, `${label}/sizes`);
  return b.op(
    'Resize',
    [x, null, null, sizes],
    { mode: 'linear', coordinate_transformation_mode: 'half_pixel', nearest_mode: 'floor' },
    `${label}/Resize`,
  );
}
