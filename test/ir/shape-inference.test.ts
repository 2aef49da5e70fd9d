/** Shape inference on hand-written graphs: one case per operator diffusion exports use, symbolic dims, bindings. */
import { describe, expect, it } from 'vitest';
import { parseModel } from '../../src/ir/text/build.js';
import { runInference, type InferOptions } from '../../src/ir/shape-inference/infer.js';
import { addDim, bindDim, divDimExact, floorDivDim, mulDim, sameDim, subDim } from '../../src/ir/shape-inference/symbolic.js';
import { broadcast } from '../../src/ir/shape-inference/rule-helpers.js';
import { formatType } from '../../src/ir/types.js';

/** Infers the graph and returns the type of each named value as `f32[batch,4]`. */
function infer(body: string, inputs: string, options: InferOptions = {}): Record<string, string> {
  const model = parseModel(`graph @g(${inputs}) -> () {\n${body}\n}`);
  const result = runInference(model, options);
  const out: Record<string, string> = {};
  for (const [v, t] of result.types) out[v.name] = formatType(t);
  const problems = result.diagnostics.filter((d) => d.severity !== 'note');
  if (problems.length) throw new Error(problems.map((d) => d.message).join('\n'));
  return out;
}

/** Contents (shape arithmetic) of named values. */
function contents(body: string, inputs: string, options: InferOptions = {}): Record<string, unknown[]> {
  const model = parseModel(`graph @g(${inputs}) -> () {\n${body}\n}`);
  const result = runInference(model, options);
  return Object.fromEntries([...result.contents].map(([v, c]) => [v.name, c]));
}

describe('symbolic dim arithmetic', () => {
  it('multiplies into canonical products', () => {
    expect(mulDim('width', 'height')).toBe('height*width');
    expect(mulDim('height', 'width')).toBe('height*width');
    expect(mulDim(2, mulDim('width', 'height'))).toBe('2*height*width');
    expect(mulDim(3, 4)).toBe(12);
    expect(mulDim('h', 0)).toBe(0);
    expect(mulDim('h', null)).toBeNull();
    expect(sameDim(mulDim('b', mulDim('a', 2)), '2*a*b')).toBe(true);
    expect(sameDim('a', 'b')).toBe(false);
    expect(sameDim(null, null)).toBe(false);
  });

  it('divides exactly when it can, else floors', () => {
    expect(divDimExact('2*height*width', 'width')).toBe('2*height');
    expect(divDimExact('height*width', 'height*width')).toBe(1);
    expect(divDimExact('height', 2)).toBeNull();
    expect(divDimExact(12, 5)).toBeNull();
    expect(floorDivDim(7, 2)).toBe(3);
    expect(floorDivDim('4*c', 2)).toBe('2*c');
    expect(floorDivDim('c', 2)).toBe('floor(c/2)');
    expect(floorDivDim(1, 0)).toBeNull();
  });

  it('adds and subtracts', () => {
    expect(addDim(2, 3)).toBe(5);
    expect(addDim('seq', 0)).toBe('seq');
    expect(addDim('seq', 77)).toBe('seq+77');
    expect(subDim('n', 'n')).toBe(0);
    expect(subDim('n', 1)).toBe('n-1');
    expect(addDim('a+b', 'c')).toBe('(a+b)+c');
  });

  it('binds symbols and evaluates expressions', () => {
    expect(bindDim('height', { height: 64 })).toBe(64);
    expect(bindDim('height*width', { height: 64, width: 48 })).toBe(3072);
    expect(bindDim('height*width', { height: 64 })).toBe('height*width');
    expect(bindDim('floor((height-1)/2)+1', { height: 63 })).toBe(32);
    expect(bindDim('ceil(height/8)', { height: 63 })).toBe(8);
    expect(bindDim('seq+77', { seq: 3 })).toBe(80);
    expect(bindDim(7, { height: 1 })).toBe(7);
    expect(bindDim(null, { height: 1 })).toBeNull();
  });

  it('broadcasts numpy-style', () => {
    expect(broadcast([['batch', 1, 320], [4, 1]])).toEqual(['batch', 4, 320]);
    expect(broadcast([['n'], [5]])).toEqual([5]);
    expect(broadcast([[2, null], [2, 3]])).toEqual([2, 3]);
    expect(broadcast([[], [3]])).toEqual([3]);
    expect(broadcast([[2], null])).toBeNull();
  });
});

describe('shape rules', () => {
  it('MatMul: batched, broadcast and vector operands', () => {
    const t = infer(
      `@w: f32[320,640] = tensor<f32[320,640]> elided("sha256:0")
       @v: f32[320] = tensor<f32[320]> elided("sha256:0")
       %p = MatMul(%x, @w)
       %q = MatMul(%q4, %k4)
       %r = MatMul(%x, @v)`,
      '%x: f32[batch,N,320], %q4: f32[batch,8,N,40], %k4: f32[1,8,40,M]',
    );
    expect(t.p).toBe('f32[batch,N,640]');
    expect(t.q).toBe('f32[batch,8,N,M]');
    expect(t.r).toBe('f32[batch,N]');
  });

  it('Gemm with and without transposes', () => {
    const t = infer(
      `%a = Gemm(%x, %w, %b) {transB = 1}
       %c = Gemm(%xt, %w2) {transA = 1}`,
      '%x: f32[batch,320], %w: f32[1280,320], %b: f32[1280], %xt: f32[320,batch], %w2: f32[320,64]',
    );
    expect(t.a).toBe('f32[batch,1280]');
    expect(t.c).toBe('f32[batch,64]');
  });

  it('Add/Sub/Mul/Div broadcast and keep the element type', () => {
    const t = infer(
      `%a = Add(%x, %bias)
       %s = Sub(%x, %one)
       %m = Mul(%x, %scale)
       %d = Div(%h, %x)`,
      '%x: f16[batch,N,320], %bias: f16[320], %one: f16[], %scale: f16[batch,1,1], %h: f16[1,N,1]',
    );
    expect(t.a).toBe('f16[batch,N,320]');
    expect(t.s).toBe('f16[batch,N,320]');
    expect(t.m).toBe('f16[batch,N,320]');
    expect(t.d).toBe('f16[batch,N,320]');
  });

  it('Reshape with 0 and -1, against static and symbolic shapes', () => {
    const t = infer(
      `@heads: i64[4] = tensor<i64[4]> [0, 0, 8, -1]
       @flat: i64[2] = tensor<i64[2]> [-1, 40]
       %a = Reshape(%x, @heads)
       %b = Reshape(%y, @flat)
       %c = Reshape(%x, %dynamic)`,
      '%x: f32[batch,N,320], %y: f32[2,4,80], %dynamic: i64[3]',
    );
    expect(t.a).toBe('f32[batch,N,8,40]');
    expect(t.b).toBe('f32[16,40]');
    expect(t.c).toBe('f32[?,?,?]');
  });

  it('Transpose with perm and default reversal', () => {
    const t = infer(
      `%a = Transpose(%x) {perm = [0, 2, 1, 3]}
       %b = Transpose(%x)`,
      '%x: f32[batch,N,8,40]',
    );
    expect(t.a).toBe('f32[batch,8,N,40]');
    expect(t.b).toBe('f32[40,8,N,batch]');
  });

  it('Softmax keeps its input type', () => {
    expect(infer('%a = Softmax(%x) {axis = -1}', '%x: f32[batch,8,N,N]').a).toBe('f32[batch,8,N,N]');
  });

  it('Conv: same padding keeps symbolic dims, stride 2 gives an expression that bindings evaluate', () => {
    const body = `@w: f32[64,32,3,3] = tensor<f32[64,32,3,3]> elided("sha256:0")
       @w1: f32[16,32,1,1] = tensor<f32[16,32,1,1]> elided("sha256:0")
       %same = Conv(%x, @w) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [1, 1]}
       %down = Conv(%x, @w) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}
       %point = Conv(%x, @w1)
       %valid = Conv(%s, @w)`;
    const inputs = '%x: f32[batch,32,height,width], %s: f32[1,32,10,7]';
    const t = infer(body, inputs);
    expect(t.same).toBe('f32[batch,64,height,width]');
    expect(t.down).toBe('f32[batch,64,floor((height-1)/2)+1,floor((width-1)/2)+1]');
    expect(t.point).toBe('f32[batch,16,height,width]');
    expect(t.valid).toBe('f32[1,64,8,5]');
    const bound = infer(body, inputs, { bindings: { height: 63, width: 48, batch: 2 } });
    expect(bound.down).toBe('f32[2,64,32,24]');
  });

  it('LayerNormalization and GroupNormalization', () => {
    const t = infer(
      `_, %mean, %inv = LayerNormalization(%x, %g, %b) {axis = -1, epsilon = 1e-5}
       %y = LayerNormalization(%x, %g, %b)
       %n = GroupNormalization(%i, %gs, %gb) {num_groups = 32}`,
      '%x: f32[batch,N,320], %g: f32[320], %b: f32[320], %i: f16[batch,320,height,width], %gs: f16[32], %gb: f16[32]',
    );
    expect(t.y).toBe('f32[batch,N,320]');
    expect(t.mean).toBe('f32[batch,N,1]');
    expect(t.inv).toBe('f32[batch,N,1]');
    expect(t.n).toBe('f16[batch,320,height,width]');
  });

  it('Resize by scales (symbolic dims double) and by sizes', () => {
    const t = infer(
      `@roi: f32[0] = tensor<f32[0]> []
       @scales: f32[4] = tensor<f32[4]> [1.0, 1.0, 2.0, 2.0]
       @half: f32[4] = tensor<f32[4]> [1.0, 1.0, 0.5, 0.5]
       @sizes: i64[4] = tensor<i64[4]> [1, 4, 5, 3]
       %up = Resize(%x, @roi, @scales) {mode = "nearest"}
       %down = Resize(%s, @roi, @half)
       %sz = Resize(%s, _, _, @sizes)`,
      '%x: f32[batch,320,height,width], %s: f32[1,4,9,7]',
    );
    expect(t.up).toBe('f32[batch,320,2*height,2*width]');
    expect(t.down).toBe('f32[1,4,4,3]');
    expect(t.sz).toBe('f32[1,4,5,3]');
  });

  it('Concat adds the axis dims, symbolically too', () => {
    const t = infer(
      `%a = Concat(%x, %y) {axis = 1}
       %b = Concat(%x, %x, %y) {axis = -1}`,
      '%x: f32[batch,320,h,w], %y: f32[batch,640,h,w]',
    );
    expect(t.a).toBe('f32[batch,960,h,w]');
    expect(t.b).toBe('f32[batch,320,h,(w+w)+w]');
    const bound = infer(`%b = Concat(%x, %x, %y) {axis = -1}`, '%x: f32[batch,320,h,w], %y: f32[batch,320,h,w]', {
      bindings: { w: 5 },
    });
    expect(bound.b).toBe('f32[batch,320,h,15]');
  });

  it('Split by sizes and into equal parts', () => {
    const t = infer(
      `@sizes: i64[2] = tensor<i64[2]> [1280, 1280]
       %a, %b = Split(%x, @sizes) {axis = -1}
       %c, %d = Split(%y) {axis = 1, num_outputs = 2}
       %e, %f = Split(%z) {axis = 0, split = [1, 3]}`,
      '%x: f32[batch,N,2560], %y: f32[batch,8,N], %z: f32[4,N]',
    );
    expect([t.a, t.b]).toEqual(['f32[batch,N,1280]', 'f32[batch,N,1280]']);
    expect([t.c, t.d]).toEqual(['f32[batch,4,N]', 'f32[batch,4,N]']);
    expect([t.e, t.f]).toEqual(['f32[1,N]', 'f32[3,N]']);
  });

  it('Split: sizes that are not known give unknown parts, never equal ones; opset 18 splits unevenly', () => {
    const t = infer(
      `%a, %b = Split(%x, %sizes) {axis = 1}
       %c, %d, %e = Split(%y) {axis = 0, num_outputs = 3}`,
      '%x: f32[2,6], %sizes: i64[2], %y: f32[7,n]',
    );
    expect([t.a, t.b]).toEqual(['f32[2,?]', 'f32[2,?]']);
    expect([t.c, t.d, t.e]).toEqual(['f32[3,n]', 'f32[3,n]', 'f32[1,n]']);
    const model = parseModel(`model {opset_import = {"" = 18}}
      graph @g(%x: f32[batch,2]) -> () {
        %a, %b = Split(%x) {axis = 0, num_outputs = 2}
      }`);
    const types = [...runInference(model).types].filter(([v]) => v.name === 'a' || v.name === 'b').map(([, ty]) => formatType(ty));
    expect(types).toEqual(['f32[?,2]', 'f32[?,2]']); // batch may be odd from opset 18 on
  });

  it('pooling with ceil_mode drops a last window that would start in the right padding', () => {
    const t = infer(
      `%a = AveragePool(%x) {ceil_mode = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [3, 3]}
       %b = MaxPool(%y) {ceil_mode = 1, kernel_shape = [1, 1], strides = [2, 2]}
       %c = MaxPool(%z) {ceil_mode = 1, kernel_shape = [3, 3], strides = [2, 2]}
       %d = MaxPool(%s) {ceil_mode = 1, kernel_shape = [3, 3], strides = [2, 2]}
       %e = MaxPool(%s) {kernel_shape = [3, 3], strides = [2, 2]}`,
      '%x: f32[1,3,2,2], %y: f32[1,1,2,2], %z: f32[1,1,4,4], %s: f32[1,1,h,w]',
    );
    expect(t.a).toBe('f32[1,3,1,1]');
    expect(t.b).toBe('f32[1,1,1,1]');
    expect(t.c).toBe('f32[1,1,2,2]'); // ceil((4-3)/2)+1 = 2, and the last window starts at 2 < 4
    expect(t.d).toBe('f32[1,1,?,?]'); // depends on the value of h, w
    expect(t.e).toBe('f32[1,1,floor((h-3)/2)+1,floor((w-3)/2)+1]');
  });

  it('Size, ConstantOfShape, Range, Identity and Neg carry shape arithmetic', () => {
    const c = contents(
      `@zero: i64[] = tensor<i64[]> [0]
       @one: i64[] = tensor<i64[]> [1]
       %s = Shape(%x)
       %r = Size(%s)
       %n = Neg(%r)
       %i = Identity(%r)
       %ones = ConstantOfShape(%i) {value = tensor<i64[1]> [1]}
       %k = Range(@zero, %r, @one)`,
      '%x: f32[b,3,5]',
    );
    expect(c.r).toEqual([3]);
    expect(c.n).toEqual([-3]);
    expect(c.ones).toEqual([1, 1, 1]);
    expect(c.k).toEqual([0, 1, 2]);
  });

  it('Slice: static, negative, stepped, and full-range on symbolic dims', () => {
    const t = infer(
      `@s0: i64[1] = tensor<i64[1]> [0]
       @s1: i64[1] = tensor<i64[1]> [1]
       @m1: i64[1] = tensor<i64[1]> [-1]
       @big: i64[1] = tensor<i64[1]> [9223372036854775807]
       @ax2: i64[1] = tensor<i64[1]> [2]
       @ax1: i64[1] = tensor<i64[1]> [1]
       @st2: i64[1] = tensor<i64[1]> [2]
       %a = Slice(%x, @s1, @big, @ax2)
       %b = Slice(%x, @s0, @m1, @ax2)
       %c = Slice(%x, @s0, @big, @ax2, @st2)
       %d = Slice(%x, @s0, @big, @ax1)
       %e = Slice(%x, @s0, @st2, @ax1)`,
      '%x: f32[batch,N,10]',
    );
    expect(t.a).toBe('f32[batch,N,9]');
    expect(t.b).toBe('f32[batch,N,9]');
    expect(t.c).toBe('f32[batch,N,5]');
    expect(t.d).toBe('f32[batch,N,10]');
    expect(t.e).toBe('f32[batch,2,10]');
  });

  it('Gather: scalar and vector indices, on data and on shape contents', () => {
    const body = `@i: i64[] = tensor<i64[]> [2]
       @iv: i64[2] = tensor<i64[2]> [0, 3]
       %emb = Gather(%table, %ids) {axis = 0}
       %s = Shape(%x)
       %h = Gather(%s, @i) {axis = 0}
       %bw = Gather(%s, @iv)`;
    const inputs = '%table: f32[1000,320], %ids: i64[batch,seq], %x: f32[batch,4,height,width]';
    const t = infer(body, inputs);
    expect(t.emb).toBe('f32[batch,seq,320]');
    expect(t.s).toBe('i64[4]');
    expect(t.h).toBe('i64[]');
    expect(t.bw).toBe('i64[2]');
    const c = contents(body, inputs);
    expect(c.s).toEqual(['batch', 4, 'height', 'width']);
    expect(c.h).toEqual(['height']);
    expect(c.bw).toEqual(['batch', 'width']);
  });

  it('Shape with start/end', () => {
    const body = `%s = Shape(%x) {start = 2}
       %t = Shape(%x) {start = -3, end = -1}`;
    const t = infer(body, '%x: f32[batch,4,height,width]');
    expect(t.s).toBe('i64[2]');
    expect(t.t).toBe('i64[2]');
    expect(contents(body, '%x: f32[batch,4,height,width]').t).toEqual([4, 'height']);
  });

  it('Unsqueeze and Squeeze, with attribute axes (opset 11) and input axes (opset 13)', () => {
    const t = infer(
      `@a0: i64[1] = tensor<i64[1]> [0]
       @am1: i64[2] = tensor<i64[2]> [-1, 1]
       %u = Unsqueeze(%x, @a0)
       %u2 = Unsqueeze(%x) {axes = [1, -1]}
       %v = Unsqueeze(%x, @am1)
       %q = Squeeze(%y, @a0)
       %q2 = Squeeze(%y)
       %q3 = Squeeze(%y) {axes = [-1]}`,
      '%x: f32[batch,N], %y: f32[1,N,1]',
    );
    expect(t.u).toBe('f32[1,batch,N]');
    expect(t.u2).toBe('f32[batch,1,N,1]');
    expect(t.v).toBe('f32[batch,1,N,1]');
    expect(t.q).toBe('f32[N,1]');
    expect(t.q2).toBe('f32[N]');
    expect(t.q3).toBe('f32[1,N]');
  });

  it('Cast changes the element type only', () => {
    const t = infer(
      `%a = Cast(%x) {to = 10}
       %b = Cast(%x) {to = 16}
       %c = Cast(%x) {to = 7}`,
      '%x: f32[batch,N,320]',
    );
    expect(t.a).toBe('f16[batch,N,320]');
    expect(t.b).toBe('bf16[batch,N,320]');
    expect(t.c).toBe('i64[batch,N,320]');
  });

  it('ReduceMean with attribute axes, input axes, keepdims and reduce-all', () => {
    const t = infer(
      `@ax: i64[2] = tensor<i64[2]> [2, 3]
       %a = ReduceMean(%x) {axes = [-1], keepdims = 1}
       %b = ReduceMean(%x, @ax) {keepdims = 0}
       %c = ReduceMean(%x) {keepdims = 0}
       %d = ReduceMean(%x, %dyn)`,
      '%x: f32[batch,320,height,width], %dyn: i64[1]',
    );
    expect(t.a).toBe('f32[batch,320,height,1]');
    expect(t.b).toBe('f32[batch,320]');
    expect(t.c).toBe('f32[]');
    expect(t.d).toBe('f32[*]');
  });

  it('Reduce with an axes input of shape [0]: known empty, so all axes (or none with noop_with_empty_axes)', () => {
    const t = infer(
      `%a = ReduceSum(%x, %axes) {keepdims = 1}
       %b = ReduceMax(%x, %axes) {keepdims = 0}
       %c = ReduceSum(%x, %axes) {noop_with_empty_axes = 1}
       %d = ReduceSum(%x, %one) {keepdims = 1}`,
      '%x: f32[3,2,batch], %axes: i64[0], %one: i64[1]',
    );
    expect(t.a).toBe('f32[1,1,1]');
    expect(t.b).toBe('f32[]');
    expect(t.c).toBe('f32[3,2,batch]');
    expect(t.d).toBe('f32[*]'); // which axis is reduced is a run-time value
  });

  it('Attention (opset 23): Y, present_key/value over past + new sequence, qk_matmul_output; 4D and 3D', () => {
    const t = infer(
      `%y, %pk, %pv, %qk = Attention(%q, %k, %v, _, %pastk, %pastv)
       %y3, %pk3, %pv3, %qk3 = Attention(%q3, %k3, %v3, %mask, %pastk3, %pastv3) {q_num_heads = 4, kv_num_heads = 2}
       %y0, _, _, %qk0 = Attention(%q, %k, %v)
       %yu, %pku, %pvu, %qku = Attention(%q, %k, %v, _, %pastu, %pastv)`,
      '%q: f32[2,8,4,16], %k: f32[2,2,seq,16], %v: f16[2,2,seq,10], %pastk: f32[2,2,12,16], %pastv: f16[2,2,12,10], ' +
        '%q3: f32[batch,4,64], %k3: f32[batch,6,32], %v3: f32[batch,6,20], %mask: bool[4,18], ' +
        '%pastk3: f32[batch,2,12,16], %pastv3: f32[batch,2,12,10], %pastu: f32[2,2,16]',
    );
    expect([t.y, t.pk, t.pv, t.qk]).toEqual(['f32[2,8,4,10]', 'f32[2,2,12+seq,16]', 'f16[2,2,12+seq,10]', 'f32[2,8,4,12+seq]']);
    expect([t.y3, t.pk3, t.pv3, t.qk3]).toEqual(['f32[batch,4,40]', 'f32[batch,2,18,16]', 'f32[batch,2,18,10]', 'f32[batch,4,4,18]']);
    expect(t.qk0).toBe('f32[2,8,4,seq]');
    // a past_key that is not 4D: the total sequence length is unknown, never guessed
    expect([t.pku, t.qku]).toEqual(['f32[2,2,?,16]', 'f32[2,8,4,?]']);
  });

  it('LinearAttention, CausalConvWithState (opset 27) and FlexAttention (ai.onnx.preview)', () => {
    const t = infer(
      `%o, %ps = LinearAttention(%q, %k, %v) {q_num_heads = 8, kv_num_heads = 4}
       %o2, %ps2 = LinearAttention(%q, %k, %v, %past) {q_num_heads = 8, kv_num_heads = 4}
       %c, %cs = CausalConvWithState(%x, %w)
       %c1, %cs1 = CausalConvWithState(%x, %w1)
       %f = ai.onnx.preview.FlexAttention(%fq, %fk, %fv)`,
      '%q: f16[2,T,64], %k: f16[2,T,32], %v: f16[2,T,48], %past: f32[2,4,8,12], %x: f32[2,4,L], %w: f32[4,1,5], %w1: f32[4,1,1], ' +
        '%fq: f32[2,8,4,16], %fk: f32[2,2,6,16], %fv: f32[2,2,6,32]',
    );
    expect(t.f).toBe('f32[2,8,4,32]');
    expect([t.o, t.ps]).toEqual(['f16[2,T,96]', 'f16[2,4,8,12]']);
    expect(t.ps2).toBe('f32[2,4,8,12]'); // the state keeps past_state's element type
    expect([t.c, t.cs, t.cs1]).toEqual(['f32[2,4,L]', 'f32[2,4,4]', 'f32[2,4,0]']);
  });

  it('TfIdfVectorizer, ai.onnx.ml ArrayFeatureExtractor and TreeEnsemble, OptionalGetElement of a tensor', () => {
    const t = infer(
      `%tf = TfIdfVectorizer(%ids) {mode = "TF", min_gram_length = 2, max_gram_length = 2, max_skip_count = 0, ngram_counts = [0, 4], ngram_indexes = [0, 1, 6, 2, 3], pool_int64s = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]}
       %tf1 = TfIdfVectorizer(%ids1) {mode = "TF", min_gram_length = 2, max_gram_length = 2, max_skip_count = 0, ngram_counts = [0, 4], ngram_indexes = [0, 1, 2], pool_int64s = [2, 3, 5, 4, 5, 6]}
       %z = ai.onnx.ml.ArrayFeatureExtractor(%x, %idx)
       %te = ai.onnx.ml.TreeEnsemble(%x) {n_targets = 2}
       %g = OptionalGetElement(%x)`,
      '%ids: i32[batch,6], %ids1: i32[12], %x: f64[3,4], %idx: i64[2]',
    );
    expect([t.tf, t.tf1]).toEqual(['f32[batch,7]', 'f32[3]']);
    expect([t.z, t.te, t.g]).toEqual(['f64[3,2]', 'f64[3,2]', 'f64[3,4]']);
  });

  it('BitCast, RotaryEmbedding, SwiGLU and DeformConv', () => {
    const t = infer(
      `%a = BitCast(%x) {to = 6}
       %r = RotaryEmbedding(%x, %cos, %sin, %pos)
       %g = SwiGLU(%x, %x) {alpha = 1.702}
       %d = DeformConv(%img, %w, %off) {kernel_shape = [2, 2], pads = [1, 1, 1, 1]}
       %e = DeformConv(%img, %w, %off) {strides = [2, 2]}`,
      '%x: f32[batch,4,3,8], %cos: f32[50,4], %sin: f32[50,4], %pos: i64[batch,3], ' +
        '%img: f32[1,3,9,9], %w: f32[5,3,2,2], %off: f32[1,8,8,8]',
    );
    expect(t.a).toBe('i32[batch,4,3,8]');
    expect(t.r).toBe('f32[batch,4,3,8]');
    expect(t.g).toBe('f32[batch,4,3,8]');
    expect(t.d).toBe('f32[1,5,10,10]');
    expect(t.e).toBe('f32[1,5,4,4]');
  });

  it('Expand broadcasts against a shape tensor, including one built from Shape', () => {
    const t = infer(
      `@target: i64[3] = tensor<i64[3]> [2, 1, 320]
       %a = Expand(%x, @target)
       %s = Shape(%y)
       %b = Expand(%t, %s)`,
      '%x: f32[1,N,1], %y: f32[batch,seq,768], %t: f32[1]',
    );
    expect(t.a).toBe('f32[2,N,320]');
    expect(t.b).toBe('f32[batch,seq,768]');
  });

  it('Where takes the data type of its branches and broadcasts all three', () => {
    const t = infer('%w = Where(%cond, %a, %b)', '%cond: bool[1,1,N,N], %a: f16[batch,8,N,N], %b: f16[]');
    expect(t.w).toBe('f16[batch,8,N,N]');
  });

  it('Constant: tensor, value_int, value_ints, value_float, value_floats', () => {
    const body = `%a = Constant() {value = tensor<i64[2]> [3, 4]}
       %b = Constant() {value_int = 7}
       %c = Constant() {value_ints = [1, 2, 3]}
       %d = Constant() {value_float = 0.5}
       %e = Constant() {value_floats = [0.5, 1.5]}
       %f = Constant() {value = tensor<f16[2,3]> [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}`;
    const t = infer(body, '');
    expect(t).toMatchObject({ a: 'i64[2]', b: 'i64[]', c: 'i64[3]', d: 'f32[]', e: 'f32[2]', f: 'f16[2,3]' });
    const c = contents(body, '');
    expect(c.a).toEqual([3, 4]);
    expect(c.b).toEqual([7]);
    expect(c.c).toEqual([1, 2, 3]);
  });
});

describe('symbolic shape arithmetic through a graph', () => {
  // The way exported UNets flatten [B,C,H,W] to tokens: Shape → Gather → Mul → Unsqueeze → Concat → Reshape.
  const tokens = `@i0: i64[] = tensor<i64[]> [0]
    @i1: i64[] = tensor<i64[]> [1]
    @i2: i64[] = tensor<i64[]> [2]
    @i3: i64[] = tensor<i64[]> [3]
    @ax0: i64[1] = tensor<i64[1]> [0]
    %s = Shape(%x)
    %b = Gather(%s, @i0) {axis = 0}
    %c = Gather(%s, @i1) {axis = 0}
    %h = Gather(%s, @i2) {axis = 0}
    %w = Gather(%s, @i3) {axis = 0}
    %hw = Mul(%h, %w)
    %b1 = Unsqueeze(%b, @ax0)
    %hw1 = Unsqueeze(%hw, @ax0)
    %c1 = Unsqueeze(%c, @ax0)
    %target = Concat(%b1, %hw1, %c1) {axis = 0}
    %xt = Transpose(%x) {perm = [0, 2, 3, 1]}
    %tok = Reshape(%xt, %target)
    %half = Div(%c, @two)
    @two: i64[] = tensor<i64[]> [2]`;
  const input = '%x: f32[batch,320,height,width]';

  it('gives height*width tokens', () => {
    const t = infer(tokens, input);
    expect(t.target).toBe('i64[3]');
    expect(t.tok).toBe('f32[batch,height*width,320]');
    const c = contents(tokens, input);
    expect(c.hw).toEqual(['height*width']);
    expect(c.target).toEqual(['batch', 'height*width', 320]);
    expect(c.half).toEqual([160]);
  });

  it('gives numbers once symbols are bound', () => {
    expect(infer(tokens, input, { bindings: { height: 64, width: 48 } }).tok).toBe('f32[batch,3072,320]');
    expect(infer(tokens, input, { bindings: { height: 64 } }).tok).toBe('f32[batch,64*width,320]');
    expect(infer(tokens, input, { bindings: { batch: 2, height: 8, width: 8 } }).tok).toBe('f32[2,64,320]');
  });

  it('apply stores inferred types but never overwrites declared ones; bindings stay out of the model', () => {
    const model = parseModel(`graph @g(%x: f32[batch,320,height,width]) -> (%y: f32[?,?,320]) {
      @shape: i64[3] = tensor<i64[3]> [0, -1, 320]
      %xt = Transpose(%x) {perm = [0, 2, 3, 1]} : f32[?,height,width,?]
      %y = Reshape(%xt, @shape)
    }`);
    const before = runInference(model, { bindings: { height: 4, width: 4 } });
    expect(formatType(before.types.get(model.graph.lookup('y')!)!)).toBe('f32[batch,16,320]');
    expect(model.graph.lookup('y')!.type).toEqual({ kind: 'tensor', dtype: 1, shape: [null, null, 320] });
    runInference(model, { apply: true });
    const xt = model.graph.lookup('xt')!;
    // declared value keeps its own type object (unknown dims not written back)
    expect(formatType(xt.type)).toBe('f32[?,height,width,?]');
    expect(xt.typeSource).toBe('declared');
    // an undeclared value gets the inferred type
    const model2 = parseModel(`graph @g(%x: f32[batch,320,height,width]) -> (%y: f32[?,?,320]) {
      @shape: i64[3] = tensor<i64[3]> [0, -1, 320]
      %xt = Transpose(%x) {perm = [0, 2, 3, 1]}
      %y = Reshape(%xt, @shape)
    }`);
    runInference(model2, { apply: true });
    expect(formatType(model2.graph.lookup('xt')!.type)).toBe('f32[batch,height,width,320]');
    expect(model2.graph.lookup('xt')!.typeSource).toBe('inferred');
  });

  it('infers inside If branches and merges their outputs', () => {
    const t = infer(
      `%y = If(%c) {then_branch = graph @t() -> (%t1: f32[batch,N,320]) {
         %t1 = Relu(%x)
       }, else_branch = graph @e() -> (%e1: f32[batch,N,?]) {
         %e1 = Neg(%w)
       }}
       %z = If(%c) {then_branch = graph @t2() -> (%t2: f32[batch,N,?]) {
         %t2 = Relu(%x)
       }, else_branch = graph @e2() -> (%e2: f32[batch,N,?]) {
         %e2 = Neg(%x)
       }}`,
      '%x: f32[batch,N,320], %w: f32[batch,N,?], %c: bool[]',
    );
    expect(t.t1).toBe('f32[batch,N,320]');
    expect(t.y).toBe('f32[batch,N,?]');
    // branch outputs declared with an unknown dim: the inferred dim fills it, in both branches
    expect(t.z).toBe('f32[batch,N,320]');
  });

  it('Scan (opset 9+): final states and scan outputs with the sequence length at scan_output_axes', () => {
    const t = infer(
      `%y, %z, %zt = Scan(%init, %x) {num_scan_inputs = 1, scan_input_axes = [1], scan_output_axes = [0, -1],
         body = graph @b(%s: f32[2], %e: f32[2]) -> (%so: f32[2], %o: f32[2], %o2: f32[2]) {
           %so = Add(%s, %e)
           %o = Identity(%so)
           %o2 = Neg(%so)
         }}`,
      '%init: f32[2], %x: f32[2,seq]',
    );
    expect([t.y, t.z, t.zt]).toEqual(['f32[2]', 'f32[seq,2]', 'f32[2,seq]']);
  });

  it('Scan body inputs without a type take the state and slice types; a state that changes shape gives unknown outputs', () => {
    const t = infer(
      `%y, %z = Scan(%init, %x) {num_scan_inputs = 1, scan_input_axes = [1],
         body = graph @b(%s: ?, %e: ?) -> (%so: ?, %o: ?) {
           %so = Add(%s, %e)
           %o = Neg(%so)
         }}
       %y2, %z2 = Scan(%init, %x) {num_scan_inputs = 1, scan_input_axes = [1],
         body = graph @b2(%s2: ?, %e2: ?) -> (%so2: ?, %o2: ?) {
           %so2 = Concat(%s2, %e2) {axis = 0}
           %o2 = Neg(%e2)
         }}`,
      '%init: f32[4], %x: f32[4,seq]',
    );
    expect([t.s, t.e, t.y, t.z]).toEqual(['f32[4]', 'f32[4]', 'f32[4]', 'f32[seq,4]']);
    // the state grows (4, 8, 12…): seeded types would hold for the first iteration only, so none are given
    expect([t.s2, t.so2, t.y2, t.z2]).toEqual([undefined, 'undef[*]', undefined, undefined]);
    expect(t.o2).toBeUndefined();
  });

  it('Loop: final loop-carried values when initial and body agree; scan outputs count iterations only for a constant trip count and no cond', () => {
    const body = (n: string) => `graph @${n}(%i${n}: i64[], %cin${n}: bool[], %v${n}: f32[1]) -> (%cout${n}: bool[], %vo${n}: f32[1], %so${n}: f32[1]) {
           %cout${n} = Identity(%cin${n})
           %vo${n} = Neg(%v${n})
           %so${n} = Identity(%vo${n})
         }`;
    const t = infer(
      `@five: i64[] = tensor<i64[]> [5]
       %a, %as = Loop(@five, _, %y) {body = ${body('b1')}}
       %b, %bs = Loop(@five, %c, %y) {body = ${body('b2')}}
       %d, %ds = Loop(%n, _, %y) {body = ${body('b3')}}`,
      '%y: f32[1], %c: bool[], %n: i64[]',
    );
    expect([t.a, t.as]).toEqual(['f32[1]', 'f32[5,1]']);
    expect([t.b, t.bs]).toEqual(['f32[1]', 'f32[?,1]']); // cond may end the loop early
    expect(t.ds).toBe('f32[?,1]');
  });
});
