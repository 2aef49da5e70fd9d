/**
 * Shape rules for the rest of the ONNX tensor operators (elementwise math, indexing,
 * scatter/gather, rearrangement, generators, strings): ops diffusion exports rarely
 * use, written from the operator specs and checked against the onnx node-test corpus
 * (test/conformance). Where the spec leaves a size to run time, the dim is unknown.
 */
import { DataType } from '../dtype.js';
import type { Dim } from '../types.js';
import type { ShapeRule } from './infer.js';
import { broadcast, normAxis, sameAsInput, scalarInput, tensor, unknownDims } from './rule-helpers.js';
import { divDimExact, mulDim } from './symbolic.js';

/** All inputs broadcast together; the element type is the first input's (or `dtype`). */
const broadcasting =
  (dtype?: DataType): ShapeRule =>
  (ctx) => [tensor(dtype ?? ctx.dtype(0), broadcast(ctx.node.inputs.map((_, i) => ctx.shape(i))))];

const boolOfInput: ShapeRule = (ctx) => [tensor(DataType.BOOL, ctx.shape(0))];

/** Same shape as input 0, element type from the `dtype` attribute (else the input's). */
const likeInput =
  (attr: string): ShapeRule =>
  (ctx) => [tensor((ctx.node.getInt(attr) as DataType | undefined) ?? ctx.dtype(0), ctx.shape(0))];

const argReduce: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(DataType.INT64, null)];
  const axis = normAxis(ctx.node.getInt('axis', 0), x.length);
  const keep = ctx.node.getInt('keepdims', 1) === 1;
  return [tensor(DataType.INT64, keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis))];
};

const topK: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const k = scalarInput(ctx, 1) ?? ctx.node.getInt('k'); // input from opset 10, attribute before
  const out = x ? x.map((d, i) => (i === normAxis(ctx.node.getInt('axis', -1), x.length) ? (k ?? null) : d)) : null;
  return [tensor(ctx.dtype(0), out), tensor(DataType.INT64, out)];
};

const gatherElements: ShapeRule = (ctx) => [tensor(ctx.dtype(0), ctx.shape(1))];

const gatherND: ShapeRule = (ctx) => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const last = idx?.[idx.length - 1];
  if (!data || !idx || typeof last !== 'number') return [tensor(ctx.dtype(0), null)];
  const b = ctx.node.getInt('batch_dims', 0);
  return [tensor(ctx.dtype(0), [...idx.slice(0, -1), ...data.slice(b + last)])];
};

const oneHot: ShapeRule = (ctx) => {
  const idx = ctx.shape(0);
  if (!idx) return [tensor(ctx.dtype(2), null)];
  const depth = scalarInput(ctx, 1);
  const out: Dim[] = [...idx];
  out.splice(normAxis(ctx.node.getInt('axis', -1), idx.length + 1), 0, depth ?? null);
  return [tensor(ctx.dtype(2), out)];
};

const depthToSpace: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const b = ctx.node.getInt('blocksize', 1);
  if (!x || x.length !== 4) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [x[0]!, divDimExact(x[1]!, b * b), mulDim(x[2]!, b), mulDim(x[3]!, b)])];
};

const spaceToDepth: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const b = ctx.node.getInt('blocksize', 1);
  if (!x || x.length !== 4) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [x[0]!, mulDim(x[1]!, b * b), divDimExact(x[2]!, b), divDimExact(x[3]!, b)])];
};

const compress: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const axis = ctx.node.getInt('axis');
  if (axis === undefined) return [tensor(ctx.dtype(0), [null])];
  if (!x) return [tensor(ctx.dtype(0), null)];
  const a = normAxis(axis, x.length);
  return [tensor(ctx.dtype(0), x.map((d, i) => (i === a ? null : d)))];
};

const nonZero: ShapeRule = (ctx) => [tensor(DataType.INT64, [ctx.rank(0) ?? null, null])];

/** RandomUniform / RandomNormal: the `shape` attribute, `dtype` (default float). */
const randomOfShape: ShapeRule = (ctx) => [
  tensor((ctx.node.getInt('dtype') as DataType | undefined) ?? DataType.FLOAT, ctx.node.getInts('shape') ?? null),
];

/** Hann/Hamming/Blackman windows: [size], `output_datatype` (default float). */
const window: ShapeRule = (ctx) => [
  tensor((ctx.node.getInt('output_datatype') as DataType | undefined) ?? DataType.FLOAT, [scalarInput(ctx, 0) ?? null]),
];

const det: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), x ? x.slice(0, -2) : null)];
};

/** Upsample (deprecated): scales from the attribute (opset 7) or a constant input (opset 9). */
const upsample: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const attr = ctx.node.attr('scales');
  const scales = attr?.type === 'floats' ? attr.value : ctx.hasInput(1) ? ctx.constantValues(1) : undefined;
  if (!x || !scales || scales.length !== x.length) return [tensor(ctx.dtype(0), unknownDims(x?.length))];
  return [tensor(ctx.dtype(0), x.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]!) : scales[i] === 1 ? d : null)))];
};

const stringSplit: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(DataType.STRING, x ? [...x, null] : null), tensor(DataType.INT64, x)];
};

/** CenterCropPad: the dims named by `axes` (default all) take the sizes of input 1. */
const centerCropPad: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const sizes = ctx.contents(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const axes = (ctx.node.getInts('axes') ?? x.map((_, i) => i)).map((a) => normAxis(a, x.length));
  const out = [...x];
  axes.forEach((a, i) => (out[a] = sizes?.[i] ?? null));
  return [tensor(ctx.dtype(0), out)];
};

const col2Im: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const image = ctx.contents(1);
  const block = ctx.numbers(2);
  if (!x || !image) return [tensor(ctx.dtype(0), null)];
  const c = block ? divDimExact(x[1] ?? null, block.reduce((a, b) => a * b, 1)) : null;
  return [tensor(ctx.dtype(0), [x[0] ?? null, c, ...image])];
};

const affineGrid: ShapeRule = (ctx) => {
  const size = ctx.contents(1);
  if (!size || size.length < 3) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [size[0]!, ...size.slice(2), size.length - 2])];
};

const gridSample: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const grid = ctx.shape(1);
  if (!x || !grid) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [x[0]!, x[1]!, ...grid.slice(1, -1)])];
};

const roiAlign: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const rois = ctx.shape(1);
  return [
    tensor(ctx.dtype(0), [rois?.[0] ?? null, x?.[1] ?? null, ctx.node.getInt('output_height', 1), ctx.node.getInt('output_width', 1)]),
  ];
};

const labelEncoder: ShapeRule = (ctx) => {
  const n = ctx.node;
  const dtype = n.getTensor('values_tensor')?.dtype
    ?? (n.attr('values_strings') ? DataType.STRING : n.attr('values_int64s') ? DataType.INT64 : n.attr('values_floats') ? DataType.FLOAT : undefined);
  return [dtype === undefined ? null : tensor(dtype, ctx.shape(0))];
};

const ops = (names: string[], rule: ShapeRule): Record<string, ShapeRule> => Object.fromEntries(names.map((n) => [n, rule]));

/** TfIdfVectorizer: [C] or [N, C] floats, C = max(ngram_indexes) + 1 (an n-gram's output slot). */
const tfIdfVectorizer: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const idx = ctx.node.getInts('ngram_indexes');
  const c: Dim = idx && idx.length > 0 ? Math.max(...idx) + 1 : null;
  if (!x) return [tensor(DataType.FLOAT, null)];
  if (x.length === 1) return [tensor(DataType.FLOAT, [c])];
  return [tensor(DataType.FLOAT, x.length === 2 ? [x[0]!, c] : null)];
};

/** ai.onnx.ml ArrayFeatureExtractor: the indices (a vector) select along the last axis of X (rank ≥ 2). */
const arrayFeatureExtractor: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const y = ctx.shape(1);
  if (!x || x.length < 2 || y?.length !== 1) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [...x.slice(0, -1), y[0]!])];
};

/** ai.onnx.ml TreeEnsemble (opset 5): Y [N, n_targets] of X's element type. */
const treeEnsemble: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), [x?.[0] ?? null, ctx.node.getInt('n_targets') ?? null])];
};

export const TENSOR_RULES: Record<string, ShapeRule> = {
  ...ops(
    [
      'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Cosh', 'Sinh', 'Tan', 'Softsign', 'Shrink', 'BitwiseNot',
      'Hardmax', 'CumProd', 'ReverseSequence', 'Swish', 'LpNormalization', 'MeanVarianceNormalization', 'LRN',
      'ScatterElements', 'ScatterND', 'Scatter', 'TensorScatter', 'ai.onnx.ml.Binarizer',
    ],
    sameAsInput,
  ),
  ...ops(['IsNaN', 'IsInf', 'RegexFullMatch'], boolOfInput),
  ...ops(['BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'Sum', 'Mean'], broadcasting()),
  StringConcat: broadcasting(DataType.STRING),
  ArgMax: argReduce,
  ArgMin: argReduce,
  TopK: topK,
  GatherElements: gatherElements,
  GatherND: gatherND,
  OneHot: oneHot,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  Compress: compress,
  NonZero: nonZero,
  // BitCast (opset 26): same bit width, so the same shape; element type from `to`
  BitCast: likeInput('to'),
  EyeLike: likeInput('dtype'),
  Bernoulli: likeInput('dtype'),
  RandomUniformLike: likeInput('dtype'),
  RandomNormalLike: likeInput('dtype'),
  RandomUniform: randomOfShape,
  RandomNormal: randomOfShape,
  HannWindow: window,
  HammingWindow: window,
  BlackmanWindow: window,
  Det: det,
  Upsample: upsample,
  StringSplit: stringSplit,
  CenterCropPad: centerCropPad,
  Col2Im: col2Im,
  AffineGrid: affineGrid,
  GridSample: gridSample,
  RoiAlign: roiAlign,
  OptionalHasElement: () => [tensor(DataType.BOOL, [])],
  // a tensor input is returned as it is (an optional one is not unpacked here)
  OptionalGetElement: (ctx) => [ctx.type(0)?.kind === 'tensor' ? ctx.type(0) : null],
  TfIdfVectorizer: tfIdfVectorizer,
  'ai.onnx.ml.ArrayFeatureExtractor': arrayFeatureExtractor,
  'ai.onnx.ml.TreeEnsemble': treeEnsemble,
  'ai.onnx.ml.LabelEncoder': labelEncoder,
};
