/** Textual-IR AST → IR model. */
import { type Attribute, ONNX_ATTRIBUTE_TYPES, type RefAttributeType } from '../attribute.js';
import { DataType, dtypeFromName, dtypeName } from '../dtype.js';
import { DeltacError } from '../errors.js';
import { LocalFunction } from '../function.js';
import { Graph } from '../graph.js';
import { Model } from '../model.js';
import { Node } from '../node.js';
import { type ByteSource, Tensor } from '../tensor.js';
import type { ValueType } from '../types.js';
import type { Value } from '../value.js';
import { float32ToBfloat16Bits, float32ToHalfBits } from '../half.js';
import {
  type AttrAst,
  type FunctionAst,
  type GraphAst,
  type ModelAst,
  type TensorAst,
  type TypeAst,
  parseFloatToken,
  parseText,
} from './parser.js';

export interface BuildOptions {
  /** Resolves `external("file", offset, length)` tensors (default: data unavailable). */
  externalSource?: (location: string) => ByteSource;
  /** Label used in error messages. */
  source?: string;
}

/** Parses textual IR into a model. */
export function parseModel(text: string, options: BuildOptions = {}): Model {
  return buildModel(parseText(text, options.source), options);
}

export function buildModel(ast: ModelAst, options: BuildOptions = {}): Model {
  const model = new Model(new Graph(ast.graph.name));
  for (const [key, value] of ast.header) {
    switch (key) {
      case 'ir_version':
        model.irVersion = Number(value);
        break;
      case 'opset_import':
        for (const [d, v] of value as [string, number][]) model.opsetImports.set(d, Number(v));
        break;
      case 'producer_name':
        model.producerName = String(value);
        break;
      case 'producer_version':
        model.producerVersion = String(value);
        break;
      case 'domain':
        model.domain = String(value);
        break;
      case 'model_version':
        model.modelVersion = Number(value);
        break;
      case 'metadata':
        model.metadataProps = (value as [string, string][]).map(([k, v]) => [k, String(v)]);
        break;
      default:
        break; // informational keys (functions = N)
    }
  }
  if (!ast.header.some(([k]) => k === 'opset_import')) model.opsetImports.set('', 17);
  const builder = new Builder(options);
  builder.fill(model.graph, ast.graph);
  for (const f of ast.functions) model.functions.push(builder.function(f));
  return model;
}

class Builder {
  /** Line of the statement being built (for messages about its types and tensors). */
  private line = 0;

  constructor(private readonly options: BuildOptions) {}

  private fail(line: number, message: string): DeltacError {
    return new DeltacError('DELTAC_E_TEXT_SYNTAX', `${this.options.source ?? '<text>'}:${line || this.line}: ${message}`);
  }

  /** A function: its header, its attribute declarations, and its body (typed values are its value_info). */
  function(ast: FunctionAst): LocalFunction {
    this.line = ast.line;
    const entry = (key: string) => ast.header.find(([k]) => k === key)?.[1];
    const text = (key: string) => {
      const v = entry(key);
      if (v !== undefined && typeof v !== 'string') throw this.fail(ast.line, `function ${key} must be a string`);
      return v ?? '';
    };
    const f = new LocalFunction(text('domain'), ast.graph.name, text('overload'));
    f.docString = text('doc');
    for (const [key, value] of ast.header) {
      if (key === 'opset_import') for (const [d, v] of value as [string, number][]) f.opsetImports.set(d, Number(v));
      else if (key === 'metadata') f.metadataProps = (value as [string, string][]).map(([k, v]) => [k, String(v)]);
      else if (!['domain', 'overload', 'doc'].includes(key)) throw this.fail(ast.line, `unknown function header entry "${key}"`);
    }
    if (ast.graph.inits.length) throw this.fail(ast.graph.inits[0]!.line, 'a function body has no initializers: write constants as Constant nodes');
    this.fill(f.body, ast.graph);
    f.attributes = ast.attributes.map((a) => (a.default ? { name: a.name, default: this.attribute(a.default, f.body) } : { name: a.name }));
    // The values the text gives a type are the function's value_info.
    const typed = [...ast.graph.inputs, ...ast.graph.outputs].filter((p) => p.type).map((p) => p.ref.name);
    for (const n of ast.graph.nodes) n.results.forEach((r, i) => r !== null && n.types[i] && typed.push(r));
    for (const name of new Set(typed)) {
      const v = f.body.lookup(name)!;
      v.hasValueInfo = true;
      if (v.type === null) v.typeSource = 'inferred';
      f.valueInfo.push(v);
    }
    for (const v of f.body.inputs) if (!v.hasValueInfo) v.typeSource = 'inferred';
    return f;
  }

  fill(g: Graph, ast: GraphAst): void {
    const initAsts = new Map(ast.inits.map((i) => [i.name, i]));
    for (const p of ast.inputs) {
      this.line = p.line;
      const v = g.addInput(p.ref.name, this.type(p.type));
      if (p.ref.kind === 'init') {
        const init = initAsts.get(p.ref.name);
        if (!init) throw this.fail(0, `input @${p.ref.name} has no initializer line`);
        this.line = init.line;
        v.initializer = this.tensor(init.tensor);
        g.initializers.set(v.name, v);
      }
    }
    for (const init of ast.inits) {
      this.line = init.line;
      if (g.initializers.has(init.name)) continue;
      g.addInitializer(init.name, this.tensor(init.tensor), true);
    }
    const nodes: [Node, (typeof ast.nodes)[number]][] = [];
    for (const na of ast.nodes) {
      const dot = na.op.lastIndexOf('.');
      this.line = na.line;
      const node = new Node(g, dot < 0 ? na.op : na.op.slice(dot + 1), dot < 0 ? '' : na.op.slice(0, dot), na.loc);
      node.overload = na.overload;
      node.metadataProps = na.meta;
      na.results.forEach((r, i) => {
        try {
          const v = g.addNodeOutput(node, r ?? g.uniqueName(`${na.loc || node.opType}_unused_output`));
          if (r === null) v.omitted = true;
          const t = na.types[i];
          if (t && t.kind !== 'unknown') {
            v.type = this.type(t);
            v.typeSource = 'declared';
          }
        } catch (e) {
          throw this.fail(na.line, (e as Error).message);
        }
      });
      g.appendNode(node);
      nodes.push([node, na]);
    }
    for (const [node, na] of nodes) {
      this.line = na.line;
      for (const [k, a] of na.attrs) node.attributes.set(k, this.attribute(a, g));
      na.args.forEach((ref, i) => {
        if (!ref) return node.setInput(i, null);
        const v = g.lookup(ref.name);
        if (!v) throw this.fail(na.line, `${na.op} reads ${ref.kind === 'init' ? '@' : '%'}${ref.name}, which is not defined`);
        if ((ref.kind === 'init') !== v.isInitializer) {
          throw this.fail(na.line, `"${ref.name}" is ${v.isInitializer ? 'an initializer: write @' : 'not an initializer: write %'}${ref.name}`);
        }
        node.setInput(i, v);
      });
    }
    for (const p of ast.outputs) {
      this.line = p.line;
      const v = g.lookup(p.ref.name);
      if (!v) throw this.fail(0, `graph output ${p.ref.name} is not defined`);
      if (p.type && p.type.kind !== 'unknown') {
        v.type = this.type(p.type);
        v.typeSource = 'declared';
      }
      g.addOutput(v);
    }
  }

  type(t: TypeAst | null): ValueType | null {
    if (!t || t.kind === 'unknown') return null;
    if (t.kind === 'opaque') return { kind: 'opaque', proto: null, summary: t.summary };
    return { kind: 'tensor', dtype: this.dtype(t.dtype), shape: t.shape };
  }

  private dtype(name: string): DataType {
    const dt = dtypeFromName(name);
    if (dt === undefined) throw this.fail(0, `unknown element type "${name}"`);
    return dt;
  }

  tensor(ast: TensorAst): Tensor {
    if (ast.type.kind !== 'tensor' || !ast.type.shape) throw this.fail(0, 'a tensor literal needs a static type like f32[2,3]');
    const dtype = this.dtype(ast.type.dtype);
    const dims = ast.type.shape.map((d) => {
      if (typeof d !== 'number') throw this.fail(0, 'tensor literal dims must be numbers');
      return d;
    });
    const count = dims.reduce((a, b) => a * b, 1);
    const data = ast.data;
    switch (data.kind) {
      case 'elided':
        return new Tensor(dtype, dims, { kind: 'elided', digest: data.digest });
      case 'external': {
        const source = this.options.externalSource?.(data.location) ?? unavailableSource(data.location);
        return new Tensor(dtype, dims, {
          kind: 'external',
          source,
          location: data.location,
          offset: data.offset,
          length: data.length,
          extraEntries: [],
        });
      }
      case 'strings': {
        const enc = new TextEncoder();
        return new Tensor(dtype, dims, { kind: 'strings', values: data.values.map((s) => enc.encode(s)) });
      }
      case 'dense': {
        if (data.values.length !== count) {
          throw this.fail(0, `tensor literal has ${data.values.length} elements for shape [${dims.join(',')}]`);
        }
        return new Tensor(dtype, dims, { kind: 'inline', bytes: encodeElements(dtype, data.values), encoding: 'raw' });
      }
    }
  }

  attribute(a: AttrAst, g: Graph): Attribute {
    switch (a.kind) {
      case 'int':
      case 'float':
      case 'string':
      case 'ints':
      case 'floats':
      case 'strings':
        return { type: a.kind, value: a.value } as Attribute;
      case 'tensor':
        return { type: 'tensor', value: this.tensor(a.value) };
      case 'tensors':
        return { type: 'tensors', value: a.value.map((t) => this.tensor(t)) };
      case 'graph':
        return { type: 'graph', value: this.subgraph(a.value, g) };
      case 'graphs':
        return { type: 'graphs', value: a.value.map((sg) => this.subgraph(sg, g)) };
      case 'ref':
        if (!(ONNX_ATTRIBUTE_TYPES as readonly string[]).includes(a.of)) {
          throw this.fail(0, `unknown attribute type "${a.of}" in ref("${a.ref}": …); one of ${ONNX_ATTRIBUTE_TYPES.join(', ')}`);
        }
        return { type: 'ref', ref: a.ref, of: a.of as RefAttributeType };
      case 'opaque':
        return { type: 'opaque', proto: { summary: a.summary } };
    }
  }

  private subgraph(ast: GraphAst, parent: Graph): Graph {
    const sub = new Graph(ast.name, parent);
    this.fill(sub, ast);
    return sub;
  }
}

function unavailableSource(location: string): ByteSource {
  return {
    description: location,
    size: () => {
      throw new DeltacError('DELTAC_E_EXTERNAL_MISSING', `external data "${location}" is not available to a model parsed from text`);
    },
    read: () => {
      throw new DeltacError('DELTAC_E_EXTERNAL_MISSING', `external data "${location}" is not available to a model parsed from text`);
    },
  };
}

/** Element literals → little-endian bytes of `dtype`. */
function encodeElements(dtype: DataType, values: string[]): Uint8Array {
  const n = values.length;
  const size = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 }[dtype as number];
  if (size === undefined) throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `cannot write element literals of type ${dtype}`);
  const bytes = new Uint8Array(n * size);
  const dv = new DataView(bytes.buffer);
  const isFloat = dtype === DataType.FLOAT || dtype === DataType.DOUBLE || dtype === DataType.FLOAT16 || dtype === DataType.BFLOAT16;
  values.forEach((s, i) => {
    if (!isFloat && !/^-?\d+$/.test(s)) {
      throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `element ${i} of a ${dtypeName(dtype)} tensor literal is "${s}", not an integer`);
    }
    const o = i * size;
    switch (dtype) {
      case DataType.FLOAT:
        return dv.setFloat32(o, parseFloatToken(s), true);
      case DataType.DOUBLE:
        return dv.setFloat64(o, parseFloatToken(s), true);
      case DataType.FLOAT16:
        return dv.setUint16(o, float32ToHalfBits(parseFloatToken(s)), true);
      case DataType.BFLOAT16:
        return dv.setUint16(o, float32ToBfloat16Bits(parseFloatToken(s)), true);
      case DataType.INT64:
        return dv.setBigInt64(o, BigInt(s), true);
      case DataType.UINT64:
        return dv.setBigUint64(o, BigInt(s), true);
      case DataType.INT32:
        return dv.setInt32(o, Number(s), true);
      case DataType.UINT32:
        return dv.setUint32(o, Number(s), true);
      case DataType.INT16:
        return dv.setInt16(o, Number(s), true);
      case DataType.UINT16:
        return dv.setUint16(o, Number(s), true);
      case DataType.INT8:
        return dv.setInt8(o, Number(s));
      default:
        return dv.setUint8(o, Number(s));
    }
  });
  return bytes;
}

