/**
 * deltac's programmatic API.
 *
 *   import { loadModel, convert, saveModel } from 'deltac';
 *   const model = loadModel('unet.onnx');
 *   const report = convert(model, { weights: 'delta.safetensors' });
 *   saveModel(model, 'unet.delta.onnx');
 */
export { DeltacError, ERROR_CODES, type ErrorCode, isDeltacError } from './ir/errors.js';
export type { Diagnostic } from './ir/diagnostics.js';
export { DataType, dtypeName } from './ir/dtype.js';
export { Model } from './ir/model.js';
export { Graph, type NodeSpec } from './ir/graph.js';
export { Node } from './ir/node.js';
export { Value } from './ir/value.js';
export { Tensor, type ByteSource } from './ir/tensor.js';
export type { Attribute } from './ir/attribute.js';
export type { Dim, ValueType } from './ir/types.js';
export { verifyModel, verifyOrThrow } from './ir/verify.js';
export { runInference, type InferOptions } from './ir/shape-inference/infer.js';
export { printModel, printGraph, type PrintOptions } from './ir/text/printer.js';
export { parseModel } from './ir/text/build.js';
export { loadModel, loadModelWithReport, type LoadOptions } from './onnx/load.js';
export { saveModel, saveModelAsync, serializeModel, startDataCopy, type EarlyDataCopy, type SaveOptions, type SaveResult } from './onnx/save.js';
export { fromOnnxProto, toOnnxProto, type ProtoCodec, type FromOnnxProtoOptions, type ToOnnxProtoResult } from './onnx/onnx-proto-interop.js';
export { PassManager, type Pass, type PassResult, type PassRecord, type PassOptions, type OptionsOf } from './passes/pass-manager.js';
export { findAttention, ATTENTION_PATTERNS } from './passes/attention/find-attention.js';
export type { AttentionMatch, AttentionPattern } from './passes/attention/match.js';
export { insertPyramidConvPass, type InsertPyramidConvOptions, type LayerReport } from './passes/delta-conv/insert-pyramid-conv.js';
export { lowerPyramidConvPass } from './passes/delta-conv/lower-pyramid-conv.js';
export { pyramidConvConfig, configId, type PyramidConvConfig, type GateKind } from './passes/delta-conv/op.js';
export { deadCodePass } from './passes/cleanup/dead-code.js';
export { foldConstantsPass } from './passes/cleanup/fold-constants.js';
export { unusedInitializersPass } from './passes/cleanup/unused-initializers.js';
export { convert, createPassManager, type ConvertOptions, type ConversionReport } from './convert.js';
export { Checkpoint } from './weights/checkpoint.js';
export { SafetensorsFile } from './weights/safetensors.js';
export { attentionCost, blockCost, flashAttentionBytes, localAttentionCost } from './analysis/flops.js';
export { analyzeModel, writeAnalysisReport, type AnalyzeOptions, type AnalysisReport } from './analysis/analyze/index.js';
export { OrtModel, readInputFolder, compareArrays } from './runtime/onnxruntime.js';
export { readNpy, writeNpy } from './runtime/npy.js';
export { smokeCheck, type SmokeCheckOptions, type SmokeCheckResult } from './runtime/smoke-check.js';
export { checkSavedModel, type CheckMode, type ConversionCheck, type ConversionCheckOptions } from './runtime/conversion-check.js';
export { checkLayers, type LayerCheck, type LayerCheckOptions, type LayerCheckResult } from './runtime/layer-check.js';
export { snapshotGraph, type GraphSnapshot } from './runtime/outside-nodes.js';
export { scanNonFinite, type NonFiniteSummary } from './weights/nonfinite.js';
