/**
 * Prints a model or graph as deltac's textual IR, one node per line:
 *
 *   graph @main(%x: f32[batch,N,320]) -> (%y: f32[batch,N,320]) {
 *     @w_q: f32[320,320] = tensor<f32[320,320]> elided("sha256:3f…")
 *     %q = MatMul(%x, @w_q) : f32[batch,N,320] loc("/attn1/to_q/MatMul")
 *   }
 *
 * `%` names values, `@` names initializers (and graphs); `_` is an omitted
 * optional input or output. Small tensors print their elements; larger ones print a
 * digest (inline data) or their external location. The model's local functions follow
 * its graph, each as a header and its body:
 *
 *   function {domain = "pkg", overload = "v2", opset_import = {"" = 18}, attributes = {alpha = 1.0, axis}}
 *   graph @Scale(%x) -> (%y) {
 *     %a = Constant() {value_float = ref("alpha": float)}
 *     %y = Mul(%x, %a)
 *   }
 *
 * A body's parameters and values print a type only where the function's value_info
 * gives one. The parser reads all of this back.
 */
import { createHash } from 'node:crypto';
import type { Attribute } from '../attribute.js';
import { DataType, dtypeName } from '../dtype.js';
import { type LocalFunction, calledFunction, indexFunctions } from '../function.js';
import type { Graph } from '../graph.js';
import type { Model } from '../model.js';
import type { Node } from '../node.js';
import type { Tensor } from '../tensor.js';
import type { Dim, ValueType } from '../types.js';
import type { Value } from '../value.js';

export interface PrintOptions {
  /** Tensors with at most this many elements print their values (default 16). */
  maxInlineElements?: number;
  /** Print only nodes whose name (loc) or any output name contains one of these substrings. */
  filter?: string[];
  /** Print node names as loc("…") (default true). */
  locations?: boolean;
}

const PLAIN_NAME = /^(?:[\w.\/\-]|::)+$/;

export function printModel(model: Model, options: PrintOptions = {}): string {
  const header: string[] = [`ir_version = ${model.irVersion}`];
  header.push(`opset_import = {${[...model.opsetImports].map(([d, v]) => `${JSON.stringify(d)} = ${v}`).join(', ')}}`);
  if (model.producerName) header.push(`producer_name = ${JSON.stringify(model.producerName)}`);
  if (model.producerVersion) header.push(`producer_version = ${JSON.stringify(model.producerVersion)}`);
  if (model.domain) header.push(`domain = ${JSON.stringify(model.domain)}`);
  if (model.modelVersion) header.push(`model_version = ${model.modelVersion}`);
  if (model.metadataProps.length) {
    header.push(`metadata = {${model.metadataProps.map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join(', ')}}`);
  }
  const text = `model {${header.join(', ')}}\n${printGraph(model.graph, options)}`;
  // With a filter, only the functions the printed nodes call.
  let functions = model.functions;
  if (options.filter) {
    const index = indexFunctions(model.functions);
    const printer = new Printer(options);
    const called = new Set(model.graph.nodes.filter((n) => printer.matches(n)).map((n) => calledFunction(index, n)));
    functions = functions.filter((f) => called.has(f));
  }
  return [text, ...functions.map((f) => printFunction(f, options))].join('\n\n');
}

/** A local function: its header line, then its body as a graph. */
export function printFunction(f: LocalFunction, options: PrintOptions = {}): string {
  const printer = new Printer({ ...options, filter: undefined });
  const header: string[] = [];
  if (f.domain) header.push(`domain = ${JSON.stringify(f.domain)}`);
  if (f.overload) header.push(`overload = ${JSON.stringify(f.overload)}`);
  header.push(`opset_import = {${[...f.opsetImports].map(([d, v]) => `${JSON.stringify(d)} = ${v}`).join(', ')}}`);
  if (f.attributes.length) {
    const decl = f.attributes.map((a) => `${attributeName(a.name)}${a.default ? ` = ${printer.attribute(a.default, '')}` : ''}`);
    header.push(`attributes = {${decl.join(', ')}}`);
  }
  if (f.docString) header.push(`doc = ${JSON.stringify(f.docString)}`);
  if (f.metadataProps.length) header.push(`metadata = {${f.metadataProps.map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join(', ')}}`);
  const typed = new Set(f.valueInfo);
  return `function {${header.join(', ')}}\n${printer.graph(f.body, '', (v) => typed.has(v))}`;
}

function attributeName(name: string): string {
  return /^[A-Za-z_]\w*$/.test(name) ? name : JSON.stringify(name);
}

export function printGraph(graph: Graph, options: PrintOptions = {}, indent = ''): string {
  return new Printer(options).graph(graph, indent);
}

export function formatRef(v: Value): string {
  return (v.isInitializer ? '@' : '%') + quoteName(v.name);
}

export function quoteName(name: string): string {
  return PLAIN_NAME.test(name) ? name : JSON.stringify(name);
}

function formatDimText(d: Dim): string {
  if (d === null) return '?';
  if (typeof d === 'number') return String(d);
  return /^[A-Za-z_][\w.]*$/.test(d) ? d : JSON.stringify(d);
}

export function formatTypeText(t: ValueType | null): string {
  if (!t) return '?';
  if (t.kind === 'opaque') return `opaque<${JSON.stringify(t.summary)}>`;
  return `${dtypeName(t.dtype)}[${t.shape === null ? '*' : t.shape.map(formatDimText).join(',')}]`;
}

/** Shortest decimal that reads back as the same float32 (always with a '.' or exponent). */
export function formatFloat32(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  const f = Math.fround(v);
  if (Object.is(f, -0)) return '-0.0';
  let s = String(f);
  for (let p = 1; p <= 9; p++) {
    const c = f.toPrecision(p);
    if (Math.fround(Number(c)) === f) {
      s = String(Number(c)); // "10", not toPrecision's "1e+1"
      break;
    }
  }
  return withPoint(normalizeExp(s));
}

function formatFloat64(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Object.is(v, -0)) return '-0.0';
  return withPoint(normalizeExp(String(v)));
}

function normalizeExp(s: string): string {
  // toPrecision may print "1.00e+5"; trim zeros in the mantissa
  const m = /^(-?\d+)(\.\d*?)0*(e[+-]?\d+)?$/.exec(s);
  if (!m) return s;
  const frac = m[2] === '.' ? '' : m[2]!;
  return `${m[1]}${frac}${m[3] ?? ''}`;
}

/**
 * An int attribute as text. Attribute ints are JS numbers, so int64 values beyond
 * 2^53 are approximate: print the exact decimal of the double, with 2^63 (what
 * INT64_MAX becomes) clamped back to INT64_MAX as the ONNX saver does.
 */
function formatInt(v: number): string {
  if (Number.isSafeInteger(v)) return String(v);
  if (v >= 2 ** 63) return '9223372036854775807';
  if (v < -(2 ** 63)) return '-9223372036854775808';
  return Number.isFinite(v) ? BigInt(v).toString() : String(v);
}

function withPoint(s: string): string {
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** Content digest of a tensor's bytes (first 16 hex digits of SHA-256). */
export function tensorDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
}

class Printer {
  private readonly maxInline: number;
  constructor(private readonly options: PrintOptions) {
    this.maxInline = options.maxInlineElements ?? 16;
  }

  /** A graph; `typed` says which parameters print a type (a function's: those in its value_info). */
  graph(g: Graph, indent: string, typed: (v: Value) => boolean = () => true): string {
    if (this.options.filter && indent === '') return this.region(g);
    const inner = indent + '  ';
    const param = (v: Value) => (typed(v) ? `${formatRef(v)}: ${formatTypeText(v.type)}` : formatRef(v));
    const params = g.inputs.map(param).join(', ');
    const results = g.outputs.map(param).join(', ');
    const lines = [`graph @${quoteName(g.name)}(${params}) -> (${results}) {`];
    for (const v of g.initializers.values()) lines.push(inner + this.initializer(v));
    for (const n of g.nodes) lines.push(inner + this.node(n, inner));
    lines.push(`${indent}}`);
    return lines.join('\n');
  }

  /**
   * The nodes matching the filter as a self-contained graph: values they read from
   * outside become its inputs, values read outside (or graph outputs) its outputs,
   * and only the initializers they read are listed. The result parses back.
   */
  private region(g: Graph): string {
    const nodes = g.nodes.filter((n) => this.matches(n));
    const inside = new Set(nodes);
    const defined = new Set(nodes.flatMap((n) => n.outputs));
    const inputs: Value[] = [];
    const inits: Value[] = [];
    for (const n of nodes) {
      for (const v of n.inputs) {
        if (!v || defined.has(v) || inputs.includes(v) || inits.includes(v)) continue;
        (v.isInitializer ? inits : inputs).push(v);
      }
    }
    const outputs = [...defined].filter((v) => v.isGraphOutput || v.uses.some((u) => !inside.has(u.node)));
    const param = (v: Value) => `%${quoteName(v.name)}: ${formatTypeText(v.type)}`;
    const lines = [`graph @${quoteName(`${g.name}.region`)}(${inputs.map(param).join(', ')}) -> (${outputs.map(param).join(', ')}) {`];
    for (const v of inits) lines.push('  ' + this.initializer(v));
    for (const n of nodes) lines.push('  ' + this.node(n, '  ', inputs));
    lines.push('}');
    return lines.join('\n');
  }

  private initializer(v: Value): string {
    return `${formatRef(v)}: ${formatTypeText(tensorTypeOf(v.initializer!))} = ${this.tensor(v.initializer!)}`;
  }

  matches(n: Node): boolean {
    return this.options.filter!.some((f) => n.name.includes(f) || n.outputs.some((o) => o.name.includes(f)));
  }

  node(n: Node, indent: string, regionInputs: Value[] = []): string {
    const results = n.outputs.map((o) => (o.omitted ? '_' : formatRef(o))).join(', ');
    const ref = (v: Value) => (regionInputs.includes(v) ? `%${quoteName(v.name)}` : formatRef(v));
    const args = n.inputs.map((v) => (v ? ref(v) : '_')).join(', ');
    let line = `${n.outputs.length ? `${results} = ` : ''}${n.qualifiedType}(${args})`;
    if (n.attributes.size) {
      line += ` {${[...n.attributes].map(([k, a]) => `${attributeName(k)} = ${this.attribute(a, indent)}`).join(', ')}}`;
    }
    if (n.outputs.some((o) => o.type)) line += ` : ${n.outputs.map((o) => formatTypeText(o.type)).join(', ')}`;
    if (n.overload) line += ` overload(${JSON.stringify(n.overload)})`;
    if (n.name && this.options.locations !== false) line += ` loc(${JSON.stringify(n.name)})`;
    if (n.metadataProps.length) {
      line += ` meta {${n.metadataProps.map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join(', ')}}`;
    }
    return line;
  }

  attribute(a: Attribute, indent: string): string {
    switch (a.type) {
      case 'int':
        return formatInt(a.value);
      case 'float':
        return formatFloat32(a.value);
      case 'string':
        return JSON.stringify(a.value);
      case 'ints':
        return a.value.length ? `[${a.value.map(formatInt).join(', ')}]` : 'ints []';
      case 'floats':
        return a.value.length ? `[${a.value.map(formatFloat32).join(', ')}]` : 'floats []';
      case 'strings':
        return a.value.length ? `[${a.value.map((s) => JSON.stringify(s)).join(', ')}]` : 'strings []';
      case 'tensor':
        return this.tensor(a.value);
      case 'tensors':
        return a.value.length ? `[${a.value.map((t) => this.tensor(t)).join(', ')}]` : 'tensors []';
      case 'graph':
        return this.graph(a.value, indent);
      case 'graphs':
        return a.value.length ? `[${a.value.map((g) => this.graph(g, indent)).join(', ')}]` : 'graphs []';
      case 'ref':
        return `ref(${JSON.stringify(a.ref)}: ${a.of})`;
      case 'opaque':
        return `opaque<${JSON.stringify(opaqueSummary(a.proto))}>`;
    }
  }

  tensor(t: Tensor): string {
    const head = `tensor<${formatTypeText(tensorTypeOf(t))}>`;
    const s = t.storage;
    if (s.kind === 'external') return `${head} external(${JSON.stringify(s.location)}, ${s.offset}, ${s.length})`;
    if (s.kind === 'elided') return `${head} elided(${JSON.stringify(s.digest)})`;
    if (s.kind === 'strings') {
      const dec = new TextDecoder();
      return `${head} [${s.values.map((v) => JSON.stringify(dec.decode(v))).join(', ')}]`;
    }
    if (t.elementCount <= this.maxInline && printableElements(t.dtype)) return `${head} [${elements(t).join(', ')}]`;
    return `${head} elided(${JSON.stringify(tensorDigest(t.bytes()))})`;
  }
}

function tensorTypeOf(t: Tensor): ValueType {
  return { kind: 'tensor', dtype: t.dtype, shape: t.dims };
}

const PRINTABLE = new Set([
  DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE, DataType.INT8, DataType.UINT8, DataType.INT16,
  DataType.UINT16, DataType.INT32, DataType.UINT32, DataType.INT64, DataType.UINT64, DataType.BOOL,
]);

function printableElements(dt: DataType): boolean {
  return PRINTABLE.has(dt);
}

function elements(t: Tensor): string[] {
  switch (t.dtype) {
    case DataType.FLOAT:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return Array.from(t.toFloat32(), formatFloat32);
    case DataType.DOUBLE: {
      const b = t.bytes();
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return Array.from({ length: t.elementCount }, (_, i) => formatFloat64(dv.getFloat64(i * 8, true)));
    }
    case DataType.INT64:
    case DataType.UINT64: {
      const b = t.bytes();
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return Array.from({ length: t.elementCount }, (_, i) =>
        String(t.dtype === DataType.INT64 ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true)),
      );
    }
    default:
      return t.toNumbers().map(String);
  }
}

function opaqueSummary(proto: unknown): string {
  const p = proto as { name?: string; type?: number; summary?: string };
  if (typeof p?.summary === 'string') return p.summary; // parsed from text
  return `attribute type ${p?.type ?? '?'}`;
}
