/**
 * `--emit fused`: the model keeps its `ai.deltac.PyramidConvBlock` nodes and defines the
 * op itself, as model-local functions (ONNX FunctionProto), so that every runtime runs
 * it: one without a kernel for the op (onnxruntime, any ONNX-conformant runtime) inlines
 * the function's body, one with a kernel (a TensorRT plugin, an onnxruntime custom op
 * built from the generated kernels) takes the node.
 *
 * The body depends on the configuration (its Conv's group is Ci, its gates and pooling
 * follow the scales and the gate kind), which ONNX attributes cannot express, so there is
 * one function per configuration, told apart by its overload (ONNX IR 10): the
 * configuration id of the generated kernels (`c320_ci640_k9_s1_0p5_simple_f32`), which
 * every node calling it carries. The body is the lowering (`emitPyramidConvBlock`) with
 * the weights as parameters: the same ops `--emit standard` writes, plus the weights'
 * re-layout as ops, which a runtime folds once since the weights are initializers.
 */
import { DataType, dtypeName } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import { LocalFunction, functionKey, indexFunctions } from '../../ir/function.js';
import type { Node } from '../../ir/node.js';
import { GraphBuilder } from '../builder.js';
import type { Pass, PassResult } from '../pass-manager.js';
import { emitPyramidConvBlock, parameterWeights } from './lower-pyramid-conv.js';
import {
  PYRAMID_CONV_DOMAIN,
  PYRAMID_CONV_INPUTS,
  PYRAMID_CONV_OP,
  PYRAMID_CONV_OUTPUT,
  PyramidInput,
  type PyramidConvConfig,
  configId,
  isPyramidConvBlock,
  pyramidConvConfig,
} from './op.js';

/** The IR version that has function overloads. */
const OVERLOAD_IR_VERSION = 10;

export const definePyramidConvFunctionsPass: Pass = {
  name: 'define-pyramid-conv-functions',
  description: 'define ai.deltac.PyramidConvBlock in the model as local functions (one per configuration) for runtimes without its kernel',
  run(model): PassResult {
    const blocks = model.graph.nodes.filter(isPyramidConvBlock);
    if (!blocks.length) return { changed: false, diagnostics: [], stats: { functions: 0, calls: 0 } };
    const opset = model.opset('') ?? 0;
    if (opset < 13) throw new DeltacError('DELTAC_E_OPSET', `the PyramidConvBlock function needs ONNX opset ≥ 13; the model imports opset ${opset}`);
    const index = indexFunctions(model.functions);
    let defined = 0;
    for (const node of blocks) {
      const cfg = pyramidConvConfig(node);
      const dtype = blockDtype(node);
      node.overload = functionOverload(cfg, dtype);
      const key = functionKey(PYRAMID_CONV_DOMAIN, PYRAMID_CONV_OP, node.overload);
      if (index.has(key)) continue;
      const f = pyramidConvFunction(cfg, dtype, opset);
      model.functions.push(f);
      index.set(key, f);
      defined++;
    }
    model.irVersion = Math.max(model.irVersion, OVERLOAD_IR_VERSION);
    return { changed: true, diagnostics: [], stats: { functions: defined, calls: blocks.length } };
  },
};

/** The element type of a block's weights (the model's, f32/f16/bf16). */
export function blockDtype(node: Node): DataType {
  const t = node.inputs[PyramidInput.UpWeight]?.type;
  return t?.kind === 'tensor' ? t.dtype : DataType.FLOAT;
}

/** The overload naming a configuration's function: the kernels' configuration id (`_bf16` for bf16 weights, which the id does not tell from f32). */
export function functionOverload(cfg: PyramidConvConfig, dtype: DataType): string {
  const id = configId(cfg);
  return dtype === DataType.BFLOAT16 ? id.replace(/_f32$/, '_bf16') : id;
}

/** The function of one configuration: parameters as the op's inputs, body the lowering. */
function pyramidConvFunction(cfg: PyramidConvConfig, dtype: DataType, opset: number): LocalFunction {
  const f = new LocalFunction(PYRAMID_CONV_DOMAIN, PYRAMID_CONV_OP, functionOverload(cfg, dtype));
  f.opsetImports.set('', opset);
  const body = f.body;
  const params = PYRAMID_CONV_INPUTS.map(({ name }) => {
    const v = body.addInput(name, null);
    v.typeSource = 'inferred'; // parameters are typed by each call
    return v;
  });
  const b = new GraphBuilder(body, '', { constants: 'nodes' });
  const out = emitPyramidConvBlock(b, params[PyramidInput.X]!, params[PyramidInput.HW]!, cfg, dtype, parameterWeights(b, params, cfg, dtype));
  body.rename(out, PYRAMID_CONV_OUTPUT.name);
  body.addOutput(out);
  f.attributes = [
    { name: 'kernel_size', default: { type: 'int', value: cfg.kernel } },
    { name: 'scales', default: { type: 'floats', value: cfg.scales.map(Math.fround) } },
    { name: 'gate', default: { type: 'string', value: cfg.gate } },
    { name: 'module_path', default: { type: 'string', value: '' } },
  ];
  const S = cfg.scales.length;
  f.docString =
    `ΔConvBlock (pyramid convolution block of ΔConvFusion) for C=${cfg.channels}, Ci=${cfg.inner}, K=${cfg.kernel}, ` +
    `scales ${cfg.scales.join(', ')}, ${cfg.gate} gate, ${dtypeName(dtype)}; the kernels deltac generates for this ` +
    `configuration share its id "${f.overload}". Inputs: x [B, N, C] (tokens, N = H·W row-major), hw int64 [2] (H, W), ` +
    `conv_up.weight [${cfg.inner}, ${cfg.channels}], conv_up.bias [${cfg.inner}], gates.conv_spatial.weight [${S}, ${cfg.kernel}, ${cfg.kernel}, ${cfg.inner}], ` +
    `conv_out.weight [${cfg.channels}, ${(S * cfg.inner) / 2}], conv_out.bias [${cfg.channels}], conv_pool.weight [${cfg.channels}, ${cfg.channels}], ` +
    `conv_pool.bias [${cfg.channels}]; output y [B, N, C]. The body is deltac's lowering to standard ONNX; a runtime with a ` +
    `kernel for ${PYRAMID_CONV_DOMAIN}.${PYRAMID_CONV_OP} may run the node instead.`;
  return f;
}
