/**
 * ONNX protobuf → deltac IR. Tensor bytes stay where they are: inline data is a
 * view into the file buffer, external data is read lazily from its file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Attribute, ONNX_ATTRIBUTE_TYPES } from '../ir/attribute.js';
import { type Diagnostic, warning } from '../ir/diagnostics.js';
import { DataType, byteSizeOf, dtypeName, isKnownDataType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import { LocalFunction } from '../ir/function.js';
import { Graph } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import { Node } from '../ir/node.js';
import { type ByteSource, Tensor, type TensorStorage } from '../ir/tensor.js';
import type { Dim, ValueType } from '../ir/types.js';
import { verifyModel } from '../ir/verify.js';
import { ExternalFiles } from './external-data.js';
import { ModelProtoType, SCHEMA_IR_VERSION } from './schema.js';
import { toNumber, type P } from './proto-util.js';

/**
 * IR versions deltac reads: from 3 (ONNX 1.0) to the newest the schema describes
 * (14, ONNX 1.23). Newer files load with a warning: what the schema does not know
 * would be dropped, and the reader is told so.
 */
export const MIN_IR_VERSION = 3;
export const MAX_IR_VERSION = SCHEMA_IR_VERSION;
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface LoadOptions {
  /**
   * What to do when an external-data file is missing: 'error' (default) or 'warn'
   * (the tensor stays unreadable; `deltac inspect` uses this).
   */
  missingExternalData?: 'error' | 'warn';
  /** Run the verifier after loading (default true). */
  verify?: boolean;
  /**
   * Where the bytes of an external-data `location` come from instead of its file (a
   * saver's view of a data file it is still writing); undefined: the file, as usual.
   */
  externalSource?: (location: string) => ByteSource | undefined;
}

export interface LoadedModel {
  model: Model;
  diagnostics: Diagnostic[];
  /** External-data files the model references (absolute paths). */
  externalFiles: string[];
}

export function loadModel(file: string, options: LoadOptions = {}): Model {
  return loadModelWithReport(file, options).model;
}

export function loadModelWithReport(file: string, options: LoadOptions = {}): LoadedModel {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `model file "${file}" does not exist`);
  }
  if (!stat.isFile()) throw new DeltacError('DELTAC_E_FILE_READ', `"${file}" is not a regular file`);
  if (stat.size > PROTOBUF_LIMIT) {
    throw new DeltacError(
      'DELTAC_E_MODEL_TOO_LARGE',
      `"${file}" is ${stat.size} bytes; an ONNX protobuf cannot exceed 2 GB — store the weights as external data`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new DeltacError('DELTAC_E_FILE_READ', `cannot read "${file}": ${(e as Error).message}`);
  }
  const loaded = decodeModel(bytes, path.dirname(path.resolve(file)), options, file);
  loaded.model.sourcePath = path.resolve(file);
  return loaded;
}

/** Decodes a serialized ModelProto; `baseDir` is where external data is looked up. */
export function decodeModel(bytes: Uint8Array, baseDir: string, options: LoadOptions = {}, label = 'model'): LoadedModel {
  let proto: P;
  try {
    proto = ModelProtoType.decode(bytes) as unknown as P;
  } catch (e) {
    throw new DeltacError(
      'DELTAC_E_NOT_ONNX',
      `"${label}" is not a valid ONNX model (protobuf decoding failed: ${(e as Error).message}); is the file truncated?`,
    );
  }
  if (!proto.graph) {
    throw new DeltacError('DELTAC_E_NOT_ONNX', `"${label}" is not an ONNX model: it has no graph`);
  }
  const irVersion = toNumber(proto.irVersion);
  if (!(irVersion >= MIN_IR_VERSION)) {
    throw new DeltacError(
      'DELTAC_E_IR_VERSION',
      `"${label}" declares IR version ${irVersion}; deltac reads IR versions ${MIN_IR_VERSION}–${MAX_IR_VERSION} (and newer ones with a warning)`,
    );
  }
  const ctx = new LoadContext(baseDir, options);
  if (irVersion > MAX_IR_VERSION) {
    ctx.diagnostics.push(
      warning(
        'DELTAC_W_IR_VERSION',
        `"${label}" declares IR version ${irVersion}, newer than the ${MAX_IR_VERSION} deltac knows; fields added since are not kept when it is saved`,
      ),
    );
  }
  const model = new Model(new Graph(proto.graph.name || 'main'));
  model.baseDir = baseDir;
  model.irVersion = irVersion;
  for (const o of proto.opsetImport ?? []) model.opsetImports.set(o.domain ?? '', toNumber(o.version));
  model.producerName = proto.producerName ?? '';
  model.producerVersion = proto.producerVersion ?? '';
  model.domain = proto.domain ?? '';
  model.modelVersion = toNumber(proto.modelVersion ?? 0);
  model.docString = proto.docString ?? '';
  model.metadataProps = entries(proto.metadataProps);
  if (proto.trainingInfo?.length) model.extra.trainingInfo = proto.trainingInfo;
  if (proto.configuration?.length) model.extra.configuration = proto.configuration;
  ctx.fillGraph(model.graph, proto.graph);
  for (const fp of proto.functions ?? []) model.functions.push(ctx.function(fp));
  if (options.verify !== false) {
    // Graph errors refuse the file; a declared type that shape inference disagrees with is
    // only a warning (the declared type wins: the file's author may know better than a rule).
    const found = verifyModel(model);
    const errors = found.filter((d) => d.severity === 'error');
    if (errors.length) throw new DeltacError(errors[0]!.code, `"${label}": ${errors[0]!.message}`);
    ctx.diagnostics.push(...found.filter((d) => d.code === 'DELTAC_W_TYPE_CONFLICT'));
  }
  return {
    model,
    diagnostics: ctx.diagnostics,
    externalFiles: ctx.files.files().map((f) => f.path),
  };
}

function entries(list: P[] | undefined): [string, string][] {
  return (list ?? []).map((e) => [e.key ?? '', e.value ?? '']);
}

class LoadContext {
  readonly files: ExternalFiles;
  readonly diagnostics: Diagnostic[] = [];
  private readonly warnedMissing = new Set<string>();

  constructor(
    baseDir: string,
    private readonly options: LoadOptions,
  ) {
    this.files = new ExternalFiles(baseDir);
  }

  fillGraph(g: Graph, gp: P): void {
    g.docString = gp.docString ?? '';
    g.metadataProps = entries(gp.metadataProps);
    if (gp.quantizationAnnotation?.length) g.extra.quantizationAnnotation = gp.quantizationAnnotation;
    if (gp.sparseInitializer?.length) g.extra.sparseInitializer = gp.sparseInitializer;

    const initByName = new Map<string, P>();
    for (const t of gp.initializer ?? []) {
      if (initByName.has(t.name)) {
        throw new DeltacError('DELTAC_E_DUPLICATE_NAME', `initializer "${t.name}" is defined twice`);
      }
      initByName.set(t.name, t);
    }
    for (const vi of gp.input ?? []) {
      const v = g.addInput(vi.name ?? '', decodeType(vi.type));
      v.docString = vi.docString ?? '';
      v.metadataProps = entries(vi.metadataProps);
      v.hasValueInfo = true;
      const t = initByName.get(v.name);
      if (t) {
        v.initializer = this.tensor(t);
        g.initializers.set(v.name, v);
      }
    }
    for (const t of gp.initializer ?? []) {
      if (g.initializers.has(t.name)) continue;
      g.addInitializer(t.name, this.tensor(t), true);
    }
    this.fillNodes(g, gp.node ?? []);
    for (const vi of gp.output ?? []) {
      const v = g.lookup(vi.name ?? '');
      if (!v) {
        throw new DeltacError('DELTAC_E_UNDEFINED_VALUE', `graph output "${vi.name}" is not defined by any node or input`);
      }
      if (vi.type) {
        v.type = decodeType(vi.type);
        v.typeSource = 'declared';
      }
      v.hasValueInfo = true;
      v.docString ||= vi.docString ?? '';
      g.addOutput(v);
    }
    for (const vi of gp.valueInfo ?? []) {
      const v = g.lookup(vi.name ?? '');
      if (!v) continue; // value_info for a value that does not exist: dropped (onnx checker tolerates it too)
      if (vi.type) {
        v.type = decodeType(vi.type);
        v.typeSource = 'declared';
      }
      v.hasValueInfo = true;
      v.docString ||= vi.docString ?? '';
      if (vi.metadataProps?.length) v.metadataProps = entries(vi.metadataProps);
    }
  }

  /** Adds the nodes of a graph or function body (outputs first: files are not always topologically sorted). */
  private fillNodes(g: Graph, protos: P[]): void {
    const nodes: [Node, P][] = [];
    for (const np of protos) {
      if (!np.opType) {
        throw new DeltacError(
          'DELTAC_E_NOT_ONNX',
          `node "${np.name ?? ''}" (outputs ${JSON.stringify(np.output ?? [])}) has no op_type; the file is not a valid ONNX model — re-export it`,
        );
      }
      const node = new Node(g, np.opType, np.domain ?? '', np.name ?? '');
      node.overload = np.overload ?? '';
      node.docString = np.docString ?? '';
      node.metadataProps = entries(np.metadataProps);
      if (np.deviceConfigurations?.length) node.extra.deviceConfigurations = np.deviceConfigurations;
      for (const out of np.output ?? []) {
        if (out === '') {
          // An omitted optional output: give it a private name so slots keep their positions.
          g.addNodeOutput(node, g.uniqueName(`${node.name || node.opType}_unused_output`)).omitted = true;
        } else {
          g.addNodeOutput(node, out);
        }
      }
      g.appendNode(node);
      nodes.push([node, np]);
    }
    for (const [node, np] of nodes) {
      for (const a of np.attribute ?? []) node.attributes.set(a.name ?? '', this.attribute(a, g, `${node.opType} node "${node.name}"`));
      (np.input ?? []).forEach((name: string, i: number) => {
        if (name === '') {
          node.setInput(i, null);
          return;
        }
        const v = g.lookup(name);
        if (!v) {
          throw new DeltacError(
            'DELTAC_E_UNDEFINED_VALUE',
            `${node.opType} node "${node.name}" reads "${name}", which no node, input or initializer defines`,
          );
        }
        node.setInput(i, v);
      });
    }
  }

  /** A FunctionProto: its body is a graph of its own whose inputs and outputs are the parameters. */
  function(fp: P): LocalFunction {
    const f = new LocalFunction(fp.domain ?? '', fp.name ?? '', fp.overload ?? '');
    const label = `function ${f.label}`;
    for (const o of fp.opsetImport ?? []) f.opsetImports.set(o.domain ?? '', toNumber(o.version));
    f.docString = fp.docString ?? '';
    f.metadataProps = entries(fp.metadataProps);
    const g = f.body;
    for (const name of fp.input ?? []) g.addInput(name, null).typeSource = 'inferred'; // typed by value_info, if at all
    this.fillNodes(g, fp.node ?? []);
    for (const name of fp.output ?? []) {
      const v = g.lookup(name);
      if (!v) throw new DeltacError('DELTAC_E_UNDEFINED_VALUE', `${label}: output "${name}" is not defined by any node or input`);
      g.addOutput(v);
    }
    for (const name of fp.attribute ?? []) f.attributes.push({ name });
    for (const a of fp.attributeProto ?? []) f.attributes.push({ name: a.name ?? '', default: this.attribute(a, g, `${label}: attribute`) });
    for (const vi of fp.valueInfo ?? []) {
      const v = g.lookup(vi.name ?? '');
      if (!v) continue; // as in graphs: value_info of a value that does not exist is dropped
      if (vi.type) {
        v.type = decodeType(vi.type);
        v.typeSource = 'declared';
      }
      v.hasValueInfo = true;
      v.docString = vi.docString ?? '';
      v.metadataProps = entries(vi.metadataProps);
      f.valueInfo.push(v);
    }
    return f;
  }

  /** An AttributeProto of `owner` (a node, for messages) in graph `g`. */
  attribute(a: P, g: Graph, owner: string): Attribute {
    const type = a.type ?? 0;
    if (a.refAttrName) return { type: 'ref', ref: a.refAttrName, of: ONNX_ATTRIBUTE_TYPES[type] ?? 'undefined' };
    const missing = (what: string) =>
      new DeltacError(
        'DELTAC_E_NOT_ONNX',
        `attribute "${a.name ?? ''}" of ${owner} has type ${what.toUpperCase()} but holds no ${what}; the file is not a valid ONNX model — re-export it`,
      );
    if (type === 4 && !a.t) throw missing('tensor');
    if (type === 5 && !a.g) throw missing('graph');
    switch (type) {
      case 1:
        return { type: 'float', value: a.f ?? 0 };
      case 2:
        return { type: 'int', value: toNumber(a.i ?? 0) };
      case 3:
        return { type: 'string', value: utf8(a.s) };
      case 4:
        return { type: 'tensor', value: this.tensor(a.t) };
      case 5:
        return { type: 'graph', value: this.subgraph(a.g, g) };
      case 6:
        return { type: 'floats', value: [...(a.floats ?? [])] };
      case 7:
        return { type: 'ints', value: (a.ints ?? []).map(toNumber) };
      case 8:
        return { type: 'strings', value: (a.strings ?? []).map(utf8) };
      case 9:
        return { type: 'tensors', value: (a.tensors ?? []).map((t: P) => this.tensor(t)) };
      case 10:
        return { type: 'graphs', value: (a.graphs ?? []).map((sg: P) => this.subgraph(sg, g)) };
      default:
        return { type: 'opaque', proto: a };
    }
  }

  subgraph(gp: P, parent: Graph): Graph {
    const sub = new Graph(gp?.name ?? '', parent);
    this.fillGraph(sub, gp ?? {});
    return sub;
  }

  tensor(t: P): Tensor {
    const name: string = t.name ?? '';
    const dtype = (t.dataType ?? 0) as DataType;
    if (!isKnownDataType(dtype) || dtype === DataType.UNDEFINED) {
      throw new DeltacError('DELTAC_E_TENSOR_DATA', `tensor "${name}" has unknown data type ${dtype}`);
    }
    const dims: number[] = (t.dims ?? []).map(toNumber);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new DeltacError('DELTAC_E_TENSOR_DATA', `tensor "${name}" has invalid dims [${dims.join(', ')}]`);
    }
    const count = dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) {
      throw new DeltacError('DELTAC_E_TENSOR_DATA', `tensor "${name}" has dims [${dims.join(', ')}] whose element count overflows`);
    }
    const expected = byteSizeOf(dtype, count);
    let storage: TensorStorage;
    if (t.dataLocation === 1) {
      if (dtype === DataType.STRING) {
        throw new DeltacError('DELTAC_E_TENSOR_DATA', `string tensor "${name}" cannot be stored as external data (ONNX does not allow it)`);
      }
      storage = this.external(t, name, expected);
    } else if (dtype === DataType.STRING) {
      storage = { kind: 'strings', values: [...(t.stringData ?? [])] };
      if (storage.values.length !== count) {
        throw new DeltacError(
          'DELTAC_E_TENSOR_DATA',
          `string tensor "${name}" has ${storage.values.length} strings for shape [${dims.join(',')}]`,
        );
      }
    } else if (t.rawData && t.rawData.length > 0) {
      storage = { kind: 'inline', bytes: t.rawData, encoding: 'raw' };
    } else {
      const typed = typedToRaw(t, dtype, count);
      storage = typed ?? { kind: 'inline', bytes: new Uint8Array(0), encoding: 'raw' };
    }
    if (storage.kind === 'inline' && storage.bytes.length !== expected) {
      throw new DeltacError(
        'DELTAC_E_TENSOR_DATA',
        `tensor "${name}" (${dtypeName(dtype)}[${dims.join(',')}]) should hold ${expected} bytes but has ${storage.bytes.length}`,
        { tensor: name, expected, actual: storage.bytes.length },
      );
    }
    const tensor = new Tensor(dtype, dims, storage, name);
    tensor.docString = t.docString ?? '';
    tensor.metadataProps = entries(t.metadataProps);
    if (t.segment) tensor.extra.segment = t.segment;
    return tensor;
  }

  private external(t: P, name: string, expected: number): TensorStorage {
    const kv = new Map<string, string>();
    const extraEntries: [string, string][] = [];
    for (const e of t.externalData ?? []) {
      kv.set(e.key, e.value);
      if (e.key !== 'location' && e.key !== 'offset' && e.key !== 'length') extraEntries.push([e.key, e.value]);
    }
    const location = kv.get('location');
    if (location === undefined) {
      throw new DeltacError('DELTAC_E_TENSOR_DATA', `external tensor "${name}" has no "location" entry`);
    }
    const offset = parseIntStrict(kv.get('offset') ?? '0', name, 'offset');
    const source = this.options.externalSource?.(location) ?? this.files.get(location, name);
    let size: number | undefined;
    try {
      size = source.size();
    } catch (e) {
      if (this.options.missingExternalData !== 'warn') throw e;
      if (!this.warnedMissing.has(location)) {
        this.warnedMissing.add(location);
        this.diagnostics.push({
          severity: 'warning',
          code: 'DELTAC_W_EXTERNAL_MISSING',
          message: `external data file "${location}" is missing`,
          where: name,
        });
      }
    }
    const length = kv.has('length') ? parseIntStrict(kv.get('length')!, name, 'length') : size !== undefined ? size - offset : expected;
    if (length !== expected) {
      throw new DeltacError(
        'DELTAC_E_TENSOR_DATA',
        `external tensor "${name}" declares ${length} bytes in "${location}" but its shape and type need ${expected}`,
      );
    }
    if (size !== undefined && offset + length > size) {
      throw new DeltacError(
        'DELTAC_E_EXTERNAL_RANGE',
        `external tensor "${name}" reads bytes [${offset}, ${offset + length}) of "${location}", which has only ${size} bytes`,
      );
    }
    return { kind: 'external', source, location, offset, length, extraEntries };
  }
}

function parseIntStrict(s: string, tensor: string, key: string): number {
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new DeltacError('DELTAC_E_TENSOR_DATA', `external tensor "${tensor}" has invalid ${key} "${s}"`);
  }
  return Number(s);
}

const decoder = new TextDecoder('utf-8');
/** A bytes field as text; an absent field decodes as protobufjs' default (an empty plain array). */
function utf8(b: Uint8Array | number[] | undefined): string {
  if (!b || b.length === 0) return '';
  return decoder.decode(b instanceof Uint8Array ? b : Uint8Array.from(b));
}

/** Typed-field data (float_data, int32_data …) → little-endian raw bytes. */
function typedToRaw(t: P, dtype: DataType, count: number): TensorStorage | undefined {
  const n = count;
  // Allocated only once a typed field's length matches the shape: dims alone must not
  // make the loader allocate (a 20-byte tensor can declare dims [2^40]).
  let bytes = new Uint8Array(0);
  let dv = new DataView(bytes.buffer);
  const need = (arr: unknown[] | undefined, perElement = 1): unknown[] | undefined => {
    if (!arr || arr.length === 0) return undefined;
    if (arr.length !== Math.ceil(n * perElement)) {
      throw new DeltacError(
        'DELTAC_E_TENSOR_DATA',
        `tensor "${t.name}" has ${arr.length} values in its typed field for ${n} elements`,
      );
    }
    bytes = new Uint8Array(byteSizeOf(dtype, n));
    dv = new DataView(bytes.buffer);
    return arr;
  };
  switch (dtype) {
    case DataType.FLOAT: {
      const a = need(t.floatData) as number[] | undefined;
      if (!a) return undefined;
      a.forEach((v, i) => dv.setFloat32(i * 4, v, true));
      break;
    }
    case DataType.COMPLEX64: {
      const a = need(t.floatData, 2) as number[] | undefined;
      if (!a) return undefined;
      a.forEach((v, i) => dv.setFloat32(i * 4, v, true));
      break;
    }
    case DataType.DOUBLE: {
      const a = need(t.doubleData) as number[] | undefined;
      if (!a) return undefined;
      a.forEach((v, i) => dv.setFloat64(i * 8, v, true));
      break;
    }
    case DataType.COMPLEX128: {
      const a = need(t.doubleData, 2) as number[] | undefined;
      if (!a) return undefined;
      a.forEach((v, i) => dv.setFloat64(i * 8, v, true));
      break;
    }
    case DataType.INT64: {
      const a = need(t.int64Data);
      if (!a) return undefined;
      a.forEach((v, i) => dv.setBigInt64(i * 8, toBigInt(v), true));
      break;
    }
    case DataType.UINT64:
    case DataType.UINT32: {
      const a = need(t.uint64Data);
      if (!a) return undefined;
      const size = dtype === DataType.UINT64 ? 8 : 4;
      a.forEach((v, i) =>
        size === 8 ? dv.setBigUint64(i * 8, BigInt.asUintN(64, toBigInt(v)), true) : dv.setUint32(i * 4, toNumber(v), true),
      );
      break;
    }
    case DataType.INT32:
    case DataType.INT16:
    case DataType.INT8:
    case DataType.UINT16:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT8E8M0: {
      const a = need(t.int32Data) as number[] | undefined;
      if (!a) return undefined;
      const size = byteSizeOf(dtype, 1);
      a.forEach((v, i) => {
        if (size === 4) dv.setInt32(i * 4, v, true);
        else if (size === 2) dv.setUint16(i * 2, v & 0xffff, true);
        else dv.setUint8(i, v & 0xff);
      });
      break;
    }
    case DataType.INT4:
    case DataType.UINT4:
    case DataType.FLOAT4E2M1:
    case DataType.INT2:
    case DataType.UINT2: {
      // Packed sub-byte types: one int32 per packed byte.
      const a = need(t.int32Data, byteSizeOf(dtype, n) / Math.max(n, 1)) as number[] | undefined;
      if (!a) return undefined;
      a.forEach((v, i) => dv.setUint8(i, v & 0xff));
      break;
    }
    default:
      return undefined;
  }
  return { kind: 'inline', bytes, encoding: 'typed' };
}

function toBigInt(v: unknown): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'bigint') return v;
  const l = v as { low: number; high: number; unsigned?: boolean };
  return (BigInt(l.high) << 32n) | BigInt(l.low >>> 0);
}

export function decodeType(tp: P | undefined | null): ValueType | null {
  if (!tp) return null;
  if (tp.tensorType) {
    const tt = tp.tensorType;
    const dims: P[] = tt.shape ? (tt.shape.dim ?? []) : [];
    const shape: Dim[] | null = tt.shape ? dims.map(decodeDim) : null;
    const t: ValueType = { kind: 'tensor', dtype: (tt.elemType ?? 0) as DataType, shape };
    if (tp.denotation) t.denotation = tp.denotation;
    if (dims.some((d) => d.denotation)) t.dimDenotations = dims.map((d) => d.denotation || null);
    return t;
  }
  return { kind: 'opaque', proto: tp, summary: summarizeType(tp) };
}

/**
 * A TensorShapeProto.Dimension: its value or its parameter, null when it has neither
 * (`dim {}`: unknown and unnamed). Presence is read from the message itself: protobufjs
 * answers an absent dim_value with the default 0.
 */
function decodeDim(d: P): Dim {
  if (has(d, 'dimParam') && d.dimParam) return d.dimParam as string;
  if (has(d, 'dimValue') && d.dimValue != null) return toNumber(d.dimValue);
  return null;
}

function has(message: P, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}

function summarizeType(tp: P): string {
  if (tp.sequenceType) return `seq<${summarizeType(tp.sequenceType.elemType ?? {})}>`;
  if (tp.optionalType) return `optional<${summarizeType(tp.optionalType.elemType ?? {})}>`;
  if (tp.mapType) return `map<${dtypeName(tp.mapType.keyType ?? 0)},${summarizeType(tp.mapType.valueType ?? {})}>`;
  if (tp.sparseTensorType) return `sparse<${dtypeName(tp.sparseTensorType.elemType ?? 0)}>`;
  if (tp.tensorType) {
    const t = decodeType(tp);
    return t && t.kind === 'tensor' ? `${dtypeName(t.dtype)}[${(t.shape ?? []).map((d) => d ?? '?').join(',')}]` : '?';
  }
  return 'opaque';
}
