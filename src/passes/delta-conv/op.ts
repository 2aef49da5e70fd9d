/**
 * The `ai.deltac.PyramidConvBlock` operator: one ΔConvBlock (SPEC.md §1) as a
 * single node. The conversion pass inserts it; the lowering pass expands it into
 * standard ONNX ops; `--emit fused` keeps it for runtimes with deltac's kernels and
 * defines it in the model as a local function per configuration (the node's overload
 * names it: `configId`), whose body is the lowering, for every other runtime.
 *
 * Inputs (in this order):
 *   0 x            [B, N, C]   tokens, N = H·W row-major
 *   1 hw           int64 [2]   (H, W): a constant or computed at run time
 *   2 up_w         [Ci, C]     conv_up.weight
 *   3 up_b         [Ci]        conv_up.bias
 *   4 gate_w       [S, K, K, Ci]  gates' conv_spatial weights, stacked in gate order
 *   5 out_w        [C, S·Ci/2] conv_out.weight
 *   6 out_b        [C]         conv_out.bias
 *   7 pool_w       [C, C]      conv_pool.weight
 *   8 pool_b       [C]         conv_pool.bias
 * Attributes:
 *   kernel_size (int K), scales (floats, one per gate), gate ("simple" | "sigmoid"),
 *   module_path (string: the diffusers path of the transformer block, may be "").
 * Output: [B, N, C].
 */
import { DataType } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import type { Node } from '../../ir/node.js';

export const PYRAMID_CONV_DOMAIN = 'ai.deltac';
export const PYRAMID_CONV_OP = 'PyramidConvBlock';
export const PYRAMID_CONV_OPSET = 1;

/** The op's inputs, in order: the local function's parameters, and what the kernels' README lists. */
export const PYRAMID_CONV_INPUTS = [
  { name: 'x', shape: '[B, N, C]', meaning: 'tokens, N = H·W row-major (float32, float16 or bfloat16)' },
  { name: 'hw', shape: 'int64 [2]', meaning: '(H, W): a constant, or Shape of the image tensor the tokens were flattened from' },
  { name: 'conv_up.weight', shape: '[Ci, C]', meaning: 'conv_up, 1×1' },
  { name: 'conv_up.bias', shape: '[Ci]', meaning: '' },
  { name: 'gates.conv_spatial.weight', shape: '[S, K, K, Ci]', meaning: 'every gate\'s depthwise K×K weights, stacked in gate order' },
  { name: 'conv_out.weight', shape: '[C, S·Ci/2]', meaning: 'conv_out, 1×1' },
  { name: 'conv_out.bias', shape: '[C]', meaning: '' },
  { name: 'conv_pool.weight', shape: '[C, C]', meaning: 'conv_pool, on the mean over tokens' },
  { name: 'conv_pool.bias', shape: '[C]', meaning: '' },
] as const;
export const PYRAMID_CONV_OUTPUT = { name: 'y', shape: '[B, N, C]' } as const;

/** The op's attributes. */
export const PYRAMID_CONV_ATTRIBUTES = [
  { name: 'kernel_size', type: 'int', meaning: 'K, the depthwise kernel size (odd)' },
  { name: 'scales', type: 'floats', meaning: 'the spatial scale of each gate (1, 0.5 …); S = their number' },
  { name: 'gate', type: 'string', meaning: '"simple" (A·B·√(Ci/2)) or "sigmoid" (A·σ(B))' },
  { name: 'module_path', type: 'string', meaning: 'the module path of the replaced attention (may be ""); not used by the computation' },
] as const;

export const enum PyramidInput {
  X = 0,
  HW = 1,
  UpWeight = 2,
  UpBias = 3,
  GateWeights = 4,
  OutWeight = 5,
  OutBias = 6,
  PoolWeight = 7,
  PoolBias = 8,
}

export type GateKind = 'simple' | 'sigmoid';
export const GATE_KINDS: readonly GateKind[] = ['simple', 'sigmoid'];

/** Everything that determines the code of a fused pyramid-conv kernel. */
export interface PyramidConvConfig {
  /** C: token channels. */
  channels: number;
  /** Ci: conv_up output channels (the gate splits it in halves). */
  inner: number;
  /** K: depthwise kernel size (odd). */
  kernel: number;
  /** Spatial scale per gate, e.g. [1, 0.5]. */
  scales: number[];
  gate: GateKind;
  dtype: 'float32' | 'float16';
}

export function isPyramidConvBlock(node: Node): boolean {
  return node.opType === PYRAMID_CONV_OP && node.domain === PYRAMID_CONV_DOMAIN;
}

/** Reads the configuration of a PyramidConvBlock node from its attributes and weight shapes. */
export function pyramidConvConfig(node: Node): PyramidConvConfig {
  const fail = (why: string) =>
    new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `PyramidConvBlock "${node.name}" is malformed: ${why}`);
  const up = node.inputs[PyramidInput.UpWeight]?.type;
  const x = node.inputs[PyramidInput.X]?.type;
  if (!up || up.kind !== 'tensor' || !up.shape || up.shape.length !== 2) throw fail('conv_up weight must be [Ci, C]');
  const [inner, channels] = up.shape;
  if (typeof inner !== 'number' || typeof channels !== 'number') throw fail('conv_up weight shape must be static');
  const gate = node.getString('gate', 'simple');
  if (gate !== 'simple' && gate !== 'sigmoid') throw fail(`unknown gate "${gate}"`);
  const scales = node.attr('scales');
  const dtype = x?.kind === 'tensor' && x.dtype === DataType.FLOAT16 ? 'float16' : 'float32';
  return {
    channels,
    inner,
    kernel: node.getInt('kernel_size', 0),
    scales: scales?.type === 'floats' ? scales.value : [1, 0.5],
    gate,
    dtype,
  };
}

/** A stable identifier of a configuration, usable in C symbols and file names. */
export function configId(c: PyramidConvConfig): string {
  const scales = c.scales.map((s) => String(s).replace('.', 'p')).join('_');
  return `c${c.channels}_ci${c.inner}_k${c.kernel}_s${scales}_${c.gate}_${c.dtype === 'float16' ? 'f16' : 'f32'}`;
}

/**
 * PyTorch's adaptive-average-pool windows for one axis (SPEC.md §1): output cell i averages
 * rows floor(i·size/out) … ceil((i+1)·size/out) − 1; [start, end) per cell.
 */
export function adaptiveWindows(size: number, out: number): [number, number][] {
  return Array.from({ length: out }, (_, i) => [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)]);
}
