/**
 * Seeded mutations of model files for the fuzz test. Every mutation is a pure
 * function of (input bytes, seed), so a failing input is reproduced from its seed
 * alone, and `describe` says in words what was done to the bytes.
 */
import { ModelProtoType } from '../../src/onnx/schema.js';

import { seededRandom as prng } from '../helpers/random.js';

export { prng };

export interface Mutated {
  bytes: Uint8Array;
  /** What was done, e.g. `flip bit 3 at 1021; truncate at 5012`. */
  steps: string[];
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Values that tend to hit boundaries: lengths, signs, varint continuation bits. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] as const;

/**
 * Generic byte-level mutations: 1–4 of bit flips, byte overwrites, truncation,
 * insertion, deletion, chunk duplication and "max varint" splices (a protobuf
 * length or int64 that decodes to ~2^64).
 */
export function mutateBytes(src: Uint8Array, r: Rand, steps: string[] = []): Mutated {
  let b = Buffer.from(src);
  const n = 1 + int(r, 4);
  for (let k = 0; k < n && b.length > 0; k++) {
    const pos = int(r, b.length);
    switch (int(r, 8)) {
      case 0: {
        const bit = int(r, 8);
        b[pos] ^= 1 << bit;
        steps.push(`flip bit ${bit} at ${pos}`);
        break;
      }
      case 1: {
        const v = int(r, 256);
        b[pos] = v;
        steps.push(`set byte ${pos} = ${v}`);
        break;
      }
      case 2: {
        const v = pick(r, INTERESTING_BYTES);
        b[pos] = v;
        steps.push(`set byte ${pos} = ${v}`);
        break;
      }
      case 3:
        b = b.subarray(0, pos);
        steps.push(`truncate at ${pos}`);
        break;
      case 4: {
        const ins = Buffer.alloc(1 + int(r, 8));
        for (let i = 0; i < ins.length; i++) ins[i] = int(r, 256);
        b = Buffer.concat([b.subarray(0, pos), ins, b.subarray(pos)]);
        steps.push(`insert ${ins.length} random bytes at ${pos}`);
        break;
      }
      case 5: {
        const len = 1 + int(r, 16);
        b = Buffer.concat([b.subarray(0, pos), b.subarray(Math.min(b.length, pos + len))]);
        steps.push(`delete ${len} bytes at ${pos}`);
        break;
      }
      case 6: {
        const from = int(r, b.length);
        const len = 1 + int(r, 64);
        b = Buffer.concat([b.subarray(0, pos), b.subarray(from, from + len), b.subarray(pos)]);
        steps.push(`copy ${len} bytes from ${from} to ${pos}`);
        break;
      }
      default: {
        const varint = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        b = Buffer.concat([b.subarray(0, pos), varint, b.subarray(Math.min(b.length, pos + 1 + int(r, 4)))]);
        steps.push(`splice max varint at ${pos}`);
      }
    }
  }
  return { bytes: b, steps };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

/** Decoded once per source buffer; each mutation works on a copy. */
const decodedModels = new WeakMap<Uint8Array, Obj>();

/** A deep copy of arrays and plain objects; byte buffers are shared (mutations replace them, never write into them). */
function cloneStructure(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(cloneStructure);
  if (x && typeof x === 'object' && !(x instanceof Uint8Array)) {
    const o: Obj = {};
    for (const [k, v] of Object.entries(x)) o[k] = cloneStructure(v);
    return o;
  }
  return x;
}

const EXTREME_INTS = ['0', '-1', '1', '4294967296', '9007199254740993', '1099511627776', '-9223372036854775808', '9223372036854775807'];
/** External-data locations: hostile ones, and the files the fuzz test puts in the model folder (a data file, a folder, an escaping symlink). */
const HOSTILE_LOCATIONS = ['/etc/passwd', '../model.onnx', 'a/../../b', '', 'C:\\x', '.', 'missing.bin', 'weights.bin', 'sub', 'escape.bin'];

/**
 * Structure-aware mutations: decode the ModelProto, break one thing that protobuf
 * itself cannot notice (dims, data types, names, attribute types, external data,
 * IR version, node order …), encode again. Finds the "valid protobuf, nonsense
 * model" paths that byte flips rarely reach.
 */
export function mutateModelProto(src: Uint8Array, r: Rand): Mutated {
  const steps: string[] = [];
  let decoded = decodedModels.get(src);
  if (!decoded) {
    decoded = ModelProtoType.toObject(ModelProtoType.decode(src), { longs: String, bytes: Buffer }) as Obj;
    decodedModels.set(src, decoded);
  }
  const m = cloneStructure(decoded) as Obj;
  const graphs: Obj[] = [];
  const collect = (g: Obj) => {
    graphs.push(g);
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) {
      if (a.g) collect(a.g);
      for (const sg of a.graphs ?? []) collect(sg);
    }
  };
  collect(m.graph);
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const g = pick(r, graphs);
    const nodes: Obj[] = g.node ?? [];
    const inits: Obj[] = g.initializer ?? [];
    const node = nodes.length ? pick(r, nodes) : undefined;
    const init = inits.length ? pick(r, inits) : undefined;
    const valueNames = [...(g.input ?? []).map((v: Obj) => v.name), ...nodes.flatMap((n) => n.output ?? []), ...inits.map((t) => t.name)];
    const what = int(r, 16);
    switch (what) {
      case 0:
        if (!init) break;
        init.dims = (init.dims ?? []).map(() => pick(r, EXTREME_INTS));
        steps.push(`dims of "${init.name}" = [${init.dims}]`);
        break;
      case 1:
        if (!init) break;
        init.dataType = pick(r, [0, 7, 8, 16, 22, 26, 27, 99, -1]);
        steps.push(`dataType of "${init.name}" = ${init.dataType}`);
        break;
      case 2:
        if (!init) break;
        init.dataLocation = 1;
        init.externalData = [
          { key: 'location', value: pick(r, HOSTILE_LOCATIONS) },
          { key: pick(r, ['offset', 'length']), value: pick(r, [...EXTREME_INTS, 'x', '1e3', '']) },
        ];
        steps.push(`external data of "${init.name}" = ${JSON.stringify(init.externalData)}`);
        break;
      case 3:
        if (!node || !node.input?.length) break;
        node.input[int(r, node.input.length)] = pick(r, ['nothing_defines_this', ...valueNames]);
        steps.push(`an input of node "${node.name}" renamed`);
        break;
      case 4:
        if (!node || !node.output?.length) break;
        node.output[int(r, node.output.length)] = pick(r, valueNames.length ? valueNames : ['x']);
        steps.push(`an output of node "${node.name}" renamed (duplicate)`);
        break;
      case 5:
        if (!node) break;
        node.opType = pick(r, ['', 'If', 'Loop', 'Reshape', 'Concat', 'Slice', 'NoSuchOp', 'Constant']);
        steps.push(`op_type of "${node.name}" = "${node.opType}"`);
        break;
      case 6:
        if (!node?.attribute?.length) break;
        {
          const a = pick(r, node.attribute as Obj[]);
          a.type = int(r, 16);
          steps.push(`attribute "${a.name}" of "${node.name}" type = ${a.type}`);
        }
        break;
      case 7:
        if (!node) break;
        node.attribute = [...(node.attribute ?? []), { name: pick(r, ['axis', 'perm', 'value', 'then_branch', 'to']), type: int(r, 16) }];
        steps.push(`empty attribute added to "${node.name}"`);
        break;
      case 8:
        m.irVersion = pick(r, EXTREME_INTS);
        steps.push(`irVersion = ${m.irVersion}`);
        break;
      case 9:
        if (nodes.length < 2) break;
        {
          const i = int(r, nodes.length);
          const j = int(r, nodes.length);
          [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
          if (nodes[i]!.input?.length && nodes[j]!.output?.length) nodes[i]!.input[0] = nodes[j]!.output[0];
          if (nodes[j]!.input?.length && nodes[i]!.output?.length) nodes[j]!.input[0] = nodes[i]!.output[0];
          steps.push(`nodes ${i} and ${j} swapped and wired into each other (cycle)`);
        }
        break;
      case 10: {
        const vis: Obj[] = [...(g.valueInfo ?? []), ...(g.output ?? []), ...(g.input ?? [])];
        if (!vis.length) break;
        const vi = pick(r, vis);
        const dims = vi.type?.tensorType?.shape?.dim;
        if (!dims?.length) break;
        dims[int(r, dims.length)] = pick(r, [{ dimValue: pick(r, EXTREME_INTS) }, { dimParam: '('.repeat(2000) }, {}]);
        steps.push(`a dim of value_info "${vi.name}" changed`);
        break;
      }
      case 11:
        if (!init) break;
        init.rawData = Buffer.from(init.rawData ?? []).subarray(0, int(r, (init.rawData?.length ?? 0) + 1));
        steps.push(`raw_data of "${init.name}" cut to ${init.rawData.length} bytes`);
        break;
      case 12:
        if (!node) break;
        nodes.push({ ...node });
        steps.push(`node "${node.name}" duplicated`);
        break;
      case 13:
        if (!(g.output ?? []).length) break;
        g.output[0].name = pick(r, ['', 'nothing', ...valueNames]);
        steps.push(`graph output 0 renamed "${g.output[0].name}"`);
        break;
      case 14:
        if (!init) break;
        delete init.rawData;
        init.floatData = Array.from({ length: int(r, 5) }, () => r());
        init.int64Data = Array.from({ length: int(r, 3) }, () => pick(r, EXTREME_INTS));
        steps.push(`"${init.name}" moved to typed fields`);
        break;
      default:
        if (!node) break;
        node.attribute = [...(node.attribute ?? []), { name: 'then_branch', type: 5, g: { name: 'g', node: [{ opType: 'Identity', input: [pick(r, valueNames)], output: ['sub_out'] }], output: [{ name: 'sub_out' }] } }];
        steps.push(`a subgraph reading an outer value added to "${node.name}"`);
    }
  }
  if (steps.length === 0) steps.push('no change');
  return { bytes: ModelProtoType.encode(ModelProtoType.fromObject(m)).finish(), steps };
}

/**
 * safetensors mutations: the 8-byte header length (huge, off by a few, 2^63),
 * values inside the JSON header (offsets, shapes, dtypes), or plain bytes.
 */
export function mutateSafetensors(src: Uint8Array, r: Rand): Mutated {
  const b = Buffer.from(src);
  const steps: string[] = [];
  const mode = int(r, 3);
  if (mode === 0) {
    const n = b.readBigUInt64LE(0);
    const v = pick(r, [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 100n * 1024n * 1024n + 1n, n - 1n, n + 1n, n + 8n, BigInt(b.length), BigInt(int(r, 2 ** 32))]);
    b.writeBigUInt64LE(BigInt.asUintN(64, v), 0);
    steps.push(`header length = ${BigInt.asUintN(64, v)}`);
    return { bytes: b, steps };
  }
  if (mode === 1) {
    const n = Number(b.readBigUInt64LE(0));
    const header = b.subarray(8, 8 + n).toString('latin1');
    // Replace one number or one quoted word in the JSON with a hostile one, keeping the length.
    const tokens = [...header.matchAll(/-?\d+|"[A-Z0-9_]+"/g)];
    if (tokens.length) {
      const t = pick(r, tokens);
      const repl = t[0].startsWith('"')
        ? pick(r, ['"F4"', '"Q8"', '"I64"', '"BOOL"', '"F8_E4M3"', '"__proto__"', '""', '{}', 'null', '[]'])
        : pick(r, ['-1', '0', '1e308', '0.5', '9007199254740993', '18446744073709551616', 'null', '"7"', String(int(r, 1 << 20))]);
      const next = header.slice(0, t.index) + repl + header.slice(t.index! + t[0].length);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(next, 'latin1')));
      steps.push(`header token ${t[0]} at ${t.index} = ${repl}`);
      return { bytes: Buffer.concat([len, Buffer.from(next, 'latin1'), b.subarray(8 + n)]), steps };
    }
  }
  return mutateBytes(b, r, steps);
}

/**
 * Textual-IR mutations: numbers replaced by extreme ones, lines deleted or
 * duplicated, brackets and quotes inserted, or plain bytes.
 */
export function mutateText(src: string, r: Rand): Mutated {
  const steps: string[] = [];
  let text = src;
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const lines = text.split('\n');
    switch (int(r, 6)) {
      case 0: {
        const nums = [...text.matchAll(/-?\d+(?:\.\d+)?/g)];
        if (!nums.length) break;
        const t = pick(r, nums);
        const repl = pick(r, ['-1', '0', '1.5', '99999999999999999999', '9007199254740993', '-9223372036854775809', '1e400', 'nan', 'inf', '""']);
        text = text.slice(0, t.index) + repl + text.slice(t.index! + t[0].length);
        steps.push(`number ${t[0]} at ${t.index} = ${repl}`);
        break;
      }
      case 1: {
        const i = int(r, lines.length);
        lines.splice(i, 1);
        text = lines.join('\n');
        steps.push(`delete line ${i + 1}`);
        break;
      }
      case 2: {
        const i = int(r, lines.length);
        lines.splice(i, 0, lines[i]!);
        text = lines.join('\n');
        steps.push(`duplicate line ${i + 1}`);
        break;
      }
      case 3: {
        const pos = int(r, text.length);
        const ins = pick(r, ['(', ')', '{', '}', '[', ']', '"', ',', '%', '@', '<', '>', ':', '=', ' _ ', '\\', '\u0000', '(((((((((((((((((((((']);
        text = text.slice(0, pos) + ins + text.slice(pos);
        steps.push(`insert ${JSON.stringify(ins)} at ${pos}`);
        break;
      }
      case 4: {
        const names = [...text.matchAll(/[%@][\w.]+/g)];
        if (names.length < 2) break;
        const a = pick(r, names);
        const bName = pick(r, names)[0];
        text = text.slice(0, a.index) + bName + text.slice(a.index! + a[0].length);
        steps.push(`name ${a[0]} at ${a.index} = ${bName}`);
        break;
      }
      default: {
        const m = mutateBytes(Buffer.from(text, 'utf8'), r, steps);
        text = Buffer.from(m.bytes).toString('utf8');
      }
    }
  }
  return { bytes: Buffer.from(text, 'utf8'), steps };
}
