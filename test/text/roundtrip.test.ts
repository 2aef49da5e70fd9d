/** Textual IR: text → model → text is the identity on canonical text, and the model holds what the text says. */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { formatFloat32, printGraph, printModel, quoteName, tensorDigest } from '../../src/ir/text/printer.js';
import { tensorType } from '../../src/ir/types.js';

/** Canonical text: exactly what the printer writes for the model it describes. */
const CANONICAL = String.raw`model {ir_version = 10, opset_import = {"" = 18, "com.microsoft" = 1}, producer_name = "hand \"written\"", producer_version = "0.1", domain = "ai.deltac.test", model_version = 3, metadata = {"license" = "MIT", "empty" = ""}}
graph @main(%sample: f32[batch,4,height,width], %"encoder hidden": f16[batch,seq,768], %tokens: f32["height*width",?], %anything: f32[*], %flag: bool[], %seq_out: opaque<"seq<f32[?]>">) -> (%out::sample: f32[batch,4,height,width], %"a:b": i64[3], %stats: f32["floor((height-1)/2)+1",1]) {
  @"w.0 copy": f32[2,2] = tensor<f32[2,2]> [1.0, -0.0, 10.0, 0.1]
  @specials: f32[7] = tensor<f32[7]> [inf, -inf, nan, 1e-7, 3.4028235e+38, 0.33333334, 123456790.0]
  @i64s: i64[4] = tensor<i64[4]> [9223372036854775807, -9223372036854775808, 0, -1]
  @u64: u64[1] = tensor<u64[1]> [18446744073709551615]
  @half: f16[3] = tensor<f16[3]> [0.099975586, 65504.0, -2.0]
  @brain: bf16[2] = tensor<bf16[2]> [3.140625, -0.5]
  @double: f64[2] = tensor<f64[2]> [0.1, 1e-300]
  @mask: bool[3] = tensor<bool[3]> [1, 0, 1]
  @bytes: u8[2] = tensor<u8[2]> [255, 0]
  @signed: i8[2] = tensor<i8[2]> [-128, 127]
  @scalar: i64[] = tensor<i64[]> [2]
  @empty: f32[0] = tensor<f32[0]> []
  @names: str[2] = tensor<str[2]> ["a", "b c"]
  @big: f32[320,320] = tensor<f32[320,320]> elided("sha256:3f9a0c1b2d4e5f60")
  @ext: f16[1024,64] = tensor<f16[1024,64]> external("weights/unet.data", 4096, 131072)
  %out::sample = Identity(%sample) : f32[batch,4,height,width] loc("/down_blocks.0/attentions.0::Identity")
  %p, _, %q = Split(%tokens, _) {axis = -1, num_outputs = 3} : f32["height*width",?], ?, f32["height*width",?]
  %"a:b" = Shape(%sample) {start = 1} : i64[3] loc("shape")
  _, %stats, _ = LayerNormalization(%sample, @"w.0 copy", _) {axis = -1, epsilon = 0.00001} : ?, f32["floor((height-1)/2)+1",1], ?
  %all = Custom(%sample) {i = -3, f = 0.5, s = "text with \"quotes\" and \\ and \n", ints = [1, -1, 9223372036854775807, -9223372036854775808], floats = [1.0, 2.5, -inf], strings = ["x", ""], t = tensor<i64[2]> [1, 2], ts = [tensor<f32[1]> [1.0], tensor<f32[0]> []], e1 = ints [], e2 = floats [], e3 = strings [], e4 = tensors [], e5 = graphs [], "weird key" = 1, ref = opaque<"ref alpha">} meta {"pkg.torch.onnx.name_scopes" = "['', 'down_blocks.0']", "pkg.torch.onnx.class_hierarchy" = "['UNet2DConditionModel']"}
  %mha = com.microsoft.MultiHeadAttention(%"encoder hidden", _, _) {num_heads = 8} : f16[batch,seq,768]
  %branch = If(%flag) {then_branch = graph @then_branch(%t_in: f32[2]) -> (%t_out: f32[batch,4,height,width]) {
    %t_out = Relu(%sample) : f32[batch,4,height,width]
    %nested = Loop(_, %flag) {body = graph @"body graph"() -> (%n_out: bool[]) {
      %n_out = Not(%flag) : bool[]
    }}
  }, else_branch = graph @else_branch() -> (%e_out: f32[batch,4,height,width]) {
    @k: f32[1] = tensor<f32[1]> [2.0]
    %e_out = Mul(%sample, @k) : f32[batch,4,height,width]
  }}
  %multi = Scan(%sample) {bodies = [graph @b0() -> () {
  }, graph @b1() -> () {
    Print(%sample)
  }]}
  com.example.SideEffect(%sample, _)
}`;

describe('text → model → text', () => {
  it('is the identity on canonical text covering every construct', () => {
    const model = parseModel(CANONICAL);
    expect(printModel(model)).toBe(CANONICAL);
  });

  it('builds the model the text describes', () => {
    const m = parseModel(CANONICAL);
    const g = m.graph;
    expect(m.irVersion).toBe(10);
    expect([...m.opsetImports]).toEqual([['', 18], ['com.microsoft', 1]]);
    expect(m.producerName).toBe('hand "written"');
    expect(m.modelVersion).toBe(3);
    expect(m.metadataProps).toEqual([['license', 'MIT'], ['empty', '']]);
    expect(g.inputs.map((v) => v.name)).toEqual(['sample', 'encoder hidden', 'tokens', 'anything', 'flag', 'seq_out']);
    expect(g.inputs[2]!.type).toEqual(tensorType(DataType.FLOAT, ['height*width', null]));
    expect(g.inputs[3]!.type).toEqual(tensorType(DataType.FLOAT, null));
    expect(g.inputs[5]!.type).toMatchObject({ kind: 'opaque', summary: 'seq<f32[?]>' });
    expect(g.outputs.map((v) => v.name)).toEqual(['out::sample', 'a:b', 'stats']);

    const w = g.initializers.get('w.0 copy')!.initializer!;
    expect(Array.from(w.toFloat32())).toEqual([1, -0, 10, Math.fround(0.1)]);
    expect(Object.is(w.toFloat32()[1], -0)).toBe(true);
    const specials = g.initializers.get('specials')!.initializer!.toFloat32();
    expect(specials[0]).toBe(Infinity);
    expect(specials[1]).toBe(-Infinity);
    expect(Number.isNaN(specials[2])).toBe(true);
    expect(specials[4]).toBe(3.4028234663852886e38);
    const i64 = g.initializers.get('i64s')!.initializer!.bytes();
    const dv = new DataView(i64.buffer, i64.byteOffset, i64.byteLength);
    expect(dv.getBigInt64(0, true)).toBe(9223372036854775807n);
    expect(dv.getBigInt64(8, true)).toBe(-9223372036854775808n);
    const half = g.initializers.get('half')!.initializer!;
    expect(half.dtype).toBe(DataType.FLOAT16);
    expect(Array.from(new Uint16Array(half.bytes().slice().buffer))).toEqual([0x2e66, 0x7bff, 0xc000]);
    expect(g.initializers.get('big')!.initializer!.storage).toEqual({ kind: 'elided', digest: 'sha256:3f9a0c1b2d4e5f60' });
    expect(g.initializers.get('ext')!.initializer!.storage).toMatchObject({
      kind: 'external',
      location: 'weights/unet.data',
      offset: 4096,
      length: 131072,
    });
    expect(g.initializers.get('names')!.initializer!.storage.kind).toBe('strings');

    const split = g.lookup('p')!.producer!;
    expect(split.inputs.map((v) => v?.name ?? null)).toEqual(['tokens', null]);
    expect(split.outputs.map((o) => o.omitted)).toEqual([false, true, false]);
    expect(split.outputs[0]!.typeSource).toBe('declared');
    expect(split.outputs[1]!.type).toBeNull();

    const all = g.lookup('all')!.producer!;
    expect(all.getString('s')).toBe('text with "quotes" and \\ and \n');
    expect(all.getInts('ints')).toEqual([1, -1, 2 ** 63, -(2 ** 63)]);
    expect(all.attr('e1')).toEqual({ type: 'ints', value: [] });
    expect(all.attr('e2')).toEqual({ type: 'floats', value: [] });
    expect(all.attr('e3')).toEqual({ type: 'strings', value: [] });
    expect(all.attr('e4')).toEqual({ type: 'tensors', value: [] });
    expect(all.attr('e5')).toEqual({ type: 'graphs', value: [] });
    expect(all.getInt('weird key')).toBe(1);
    expect(all.meta('pkg.torch.onnx.class_hierarchy')).toBe("['UNet2DConditionModel']");
    expect(g.lookup('mha')!.producer!.domain).toBe('com.microsoft');
    expect(g.lookup('a:b')!.producer!.name).toBe('shape');

    const ifNode = g.lookup('branch')!.producer!;
    const [thenG, elseG] = ifNode.subgraphs();
    expect(thenG!.parent).toBe(g);
    expect(thenG!.inputs.map((v) => v.name)).toEqual(['t_in']);
    // the branch reads the outer %sample: an ordinary use of the outer value
    expect(g.lookup('sample')!.uses.some((u) => u.node.graph === thenG)).toBe(true);
    const loop = thenG!.lookup('nested')!.producer!;
    const body = loop.subgraphs()[0]!;
    expect(body.name).toBe('body graph');
    expect(body.parent).toBe(thenG);
    expect(body.lookup('flag')).toBe(g.lookup('flag'));
    expect(elseG!.initializers.has('k')).toBe(true);
    expect(g.lookup('k')).toBeUndefined();
  });

  it('prints a model built with the API and parses it back to the same text', () => {
    const model = new Model(new Graph('api'));
    model.opsetImports.set('', 17);
    const g = model.graph;
    const x = g.addInput('x', tensorType(DataType.FLOAT, ['batch', 'N', 8]));
    const w = g.addInitializer('proj.weight', Tensor.fromFloat32(Array.from({ length: 64 }, (_, i) => i / 8), [8, 8]));
    const b = g.addInitializer('proj.bias', Tensor.fromFloat32([0.5, -1, 0, 0, 0, 0, 0, 2], [8], DataType.FLOAT16));
    const y = g.op('MatMul', [x, w], { name: '/proj/MatMul' });
    const z = g.op('Add', [y, b], { name: '/proj/Add', output: 'z' });
    g.addOutput(z);
    const text = printModel(model);
    expect(text).toBe(
      [
        'model {ir_version = 8, opset_import = {"" = 17}}',
        'graph @api(%x: f32[batch,N,8]) -> (%z: ?) {',
        `  @proj.weight: f32[8,8] = tensor<f32[8,8]> elided("${tensorDigest(w.initializer!.bytes())}")`,
        '  @proj.bias: f16[8] = tensor<f16[8]> [0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]',
        '  %/proj/MatMul_output_0 = MatMul(%x, @proj.weight) loc("/proj/MatMul")',
        '  %z = Add(%/proj/MatMul_output_0, @proj.bias) loc("/proj/Add")',
        '}',
      ].join('\n'),
    );
    expect(printModel(parseModel(text))).toBe(text);
  });

  it('accepts free layout and comments, and prints canonical text', () => {
    const loose = `// a comment line
      graph @g( %x : f32[ 2 , batch ] ) -> ( %y ) {
        %y = Relu( %x )   // trailing comment
      }`;
    const m = parseModel(loose);
    expect(m.opsetImports.get('')).toBe(17); // default opset when the header is absent
    expect(printGraph(m.graph)).toBe(['graph @g(%x: f32[2,batch]) -> (%y: ?) {', '  %y = Relu(%x)', '}'].join('\n'));
  });
});

describe('printer options', () => {
  const text = `graph @g(%x: f32[4]) -> (%y: f32[4]) {
  @small: f32[4] = tensor<f32[4]> [1.0, 2.0, 3.0, 4.0]
  %a = Add(%x, @small) loc("/blocks.0/add")
  %y = Relu(%a) loc("/blocks.1/relu")
}`;

  it('elides tensors above maxInlineElements with a content digest', () => {
    const m = parseModel(text);
    const bytes = m.graph.initializers.get('small')!.initializer!.bytes();
    const printed = printGraph(m.graph, { maxInlineElements: 3 });
    expect(printed).toContain(`@small: f32[4] = tensor<f32[4]> elided("${tensorDigest(bytes)}")`);
    expect(tensorDigest(bytes)).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(tensorDigest(bytes)).not.toBe(tensorDigest(new Uint8Array(16)));
  });

  it('filters top-level nodes by name or output substring, printing them as a region graph that parses', () => {
    const m = parseModel(text);
    const printed = printGraph(m.graph, { filter: ['blocks.1'] });
    expect(printed).toBe(['graph @g.region(%a: ?) -> (%y: f32[4]) {', '  %y = Relu(%a) : f32[4] loc("/blocks.1/relu")', '}'].join('\n'));
    expect(printGraph(parseModel(printed).graph)).toBe(printed);
    const add = printGraph(m.graph, { filter: ['blocks.0'] });
    expect(add).toContain('@small: f32[4] = tensor<f32[4]> [1.0, 2.0, 3.0, 4.0]');
    expect(add).toContain('-> (%a: ?)');
    expect(printGraph(m.graph, { filter: ['nothing'] })).toBe('graph @g.region() -> () {\n}');
  });

  it('omits locations when asked', () => {
    const m = parseModel(text);
    expect(printGraph(m.graph, { locations: false })).not.toContain('loc(');
  });

  it('quotes names that are not plain', () => {
    expect(quoteName('down_blocks.0/attn1::to_q')).toBe('down_blocks.0/attn1::to_q');
    expect(quoteName('a:b')).toBe('"a:b"');
    expect(quoteName('with space')).toBe('"with space"');
    expect(quoteName('ü')).toBe('"ü"');
  });
});

describe('float formatting', () => {
  it('prints the shortest text that reads back as the same float32', () => {
    const cases: [number, string][] = [
      [0, '0.0'],
      [-0, '-0.0'],
      [1, '1.0'],
      [10, '10.0'],
      [100, '100.0'],
      [0.1, '0.1'],
      [-2.5, '-2.5'],
      [1 / 3, '0.33333334'],
      [1e-7, '1e-7'],
      [1.5e-5, '0.000015'],
      [123456789, '123456790.0'],
      [3.4028234663852886e38, '3.4028235e+38'],
      [1e-45, '1e-45'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [NaN, 'nan'],
    ];
    for (const [v, s] of cases) expect([v, formatFloat32(v)]).toEqual([v, s]);
  });

  it('round-trips random float32 bit patterns through text exactly', () => {
    let x = 12345;
    const bits = new Uint32Array(2000);
    for (let i = 0; i < bits.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bits[i] = x >>> 0;
    }
    const values = new Float32Array(bits.buffer).filter((v) => !Number.isNaN(v));
    const m = new Model();
    m.graph.addInitializer('r', Tensor.fromFloat32(values, [values.length]));
    const text = printModel(m, { maxInlineElements: values.length });
    const back = parseModel(text).graph.initializers.get('r')!.initializer!;
    expect(new Uint32Array(back.bytes().slice().buffer)).toEqual(new Uint32Array(values.buffer));
  });
});
