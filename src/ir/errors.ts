/**
 * deltac's error type. Every failure a user can cause carries a stable code
 * (`DELTAC_E_…`) and a one-line message that says what is wrong and what to do.
 * The CLI maps `DeltacError` to exit code 1 (user error) and anything else to 2.
 */

/** Every stable error code, with the situation it names (listed in the README). */
export const ERROR_CODES = {
  // input files
  DELTAC_E_FILE_NOT_FOUND: 'a file named on the command line or by the model does not exist',
  DELTAC_E_FILE_READ: 'a file could not be read (permissions, I/O error, a directory or pipe where a file was expected)',
  DELTAC_E_NOT_ONNX: 'the file is not an ONNX model (not a protobuf ModelProto, truncated, nested too deep, or breaking the schema: a node without op_type, an attribute without its value)',
  DELTAC_E_MODEL_TOO_LARGE: 'the protobuf part of the model exceeds 2 GB; weights must be stored as external data',
  DELTAC_E_IR_VERSION: 'the model declares an IR version deltac does not support',
  DELTAC_E_OPSET: 'the model imports an opset version deltac does not support',
  DELTAC_E_TENSOR_DATA: "a tensor's data size disagrees with its declared shape and type, or its data is unavailable",
  DELTAC_E_EXTERNAL_PATH: 'an external-data location is absolute, contains "..", or resolves (through symlinks too) outside the model folder',
  DELTAC_E_EXTERNAL_MISSING: 'an external-data file the model references does not exist',
  DELTAC_E_EXTERNAL_RANGE: "an external-data offset/length lies past the end of its file",
  // graph structure
  DELTAC_E_GRAPH_CYCLE: 'the graph contains a cycle',
  DELTAC_E_DUPLICATE_NAME: 'two nodes/initializers/inputs define the same value name',
  DELTAC_E_UNDEFINED_VALUE: 'a node uses a value that nothing defines',
  DELTAC_E_DANGLING_VALUE: 'a value is still used after its producer was removed',
  // textual IR
  DELTAC_E_TEXT_SYNTAX: 'the textual IR does not parse',
  // weights
  DELTAC_E_SAFETENSORS: 'the safetensors file is malformed (header size, JSON, offsets, dtype)',
  DELTAC_E_WEIGHT_MISSING: 'the checkpoint has no weights for a matched layer',
  DELTAC_E_WEIGHT_SHAPE: 'a checkpoint tensor has the wrong shape for the layer it is bound to',
  DELTAC_E_WEIGHT_MAP: 'the --map file is malformed or names layers/keys that do not exist',
  DELTAC_E_WEIGHTS_UNUSED: 'the checkpoint matches none of the model\'s layers (weights for another model?)',
  DELTAC_E_WEIGHTS_NONFINITE: 'a checkpoint tensor deltac binds (or an initializer the conversion writes) holds NaN or ±Inf',
  // conversion
  DELTAC_E_NO_SELF_ATTENTION: 'the model has no self-attention to convert',
  DELTAC_E_SPATIAL_DIMS: 'the height/width of a self-attention layer could not be determined',
  DELTAC_E_UNSUPPORTED_MODEL: 'the model contains a construct the conversion cannot handle',
  DELTAC_E_BAD_OPTION: 'a command-line option or API argument is invalid',
  // output
  DELTAC_E_OUTPUT_EXISTS: 'the output would overwrite the input model or its data files (--force allows it, except for a data file that --reuse-weights still reads)',
  DELTAC_E_WRITE: 'the output could not be written (nothing partial is left behind)',
  // verification / runtime
  DELTAC_E_RUNTIME: 'onnxruntime failed to load or run a model',
  DELTAC_E_VERIFY_MISMATCH: 'the converted model does not match the reference within tolerance',
  DELTAC_E_CHECK_FAILED: 'the smoke run of the converted model failed: it did not load, did not run, or gave NaN/Inf where the original gives finite values',
  DELTAC_E_NPY: 'a .npy file is malformed or has an unsupported dtype',
  // pipelines
  DELTAC_E_PIPELINE_FOLDER: 'a pipeline folder is incomplete or malformed: no model_index.json, no unet/model.onnx, a component the pipeline needs is missing, or a config file is not valid JSON',
  DELTAC_E_UNSUPPORTED_PIPELINE: 'the pipeline class (or a model of it) is not one deltac can run; the message names the supported classes',
  DELTAC_E_LATENTS_SHAPE: 'the --latents array does not have the shape the pipeline needs at this size ([1, C, height/f, width/f])',
  DELTAC_E_UNSUPPORTED_SCHEDULER: 'the scheduler (its class, or an option in scheduler_config.json) is not one deltac implements, or its config is malformed',
  DELTAC_E_TOKENIZER: 'a tokenizer folder holds neither vocab.json + merges.txt nor tokenizer.json, or its files are malformed or of another kind',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class DeltacError extends Error {
  readonly code: ErrorCode;
  /** Optional structured context (layer, key, shapes …) for --json output. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeltacError';
    this.code = code;
    this.details = details;
  }

  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isDeltacError(e: unknown): e is DeltacError {
  return e instanceof DeltacError;
}

/** Throws a DeltacError when `condition` is false. */
export function check(condition: unknown, code: ErrorCode, message: () => string): asserts condition {
  if (!condition) throw new DeltacError(code, message());
}
