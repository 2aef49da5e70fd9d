/** The verifier: every structural problem is reported with its stable code. */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import { Graph } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { tensorType } from '../../src/ir/types.js';
import { verifyModel, verifyOrThrow } from '../../src/ir/verify.js';

const base = `graph @g(%x: f32[2,3]) -> (%y: f32[2,3]) {
  @k: f32[3] = tensor<f32[3]> [1.0, 2.0, 3.0]
  %a = Add(%x, @k)
  %b = Relu(%a)
  %y = Neg(%b)
}`;

function errors(m: Model) {
  return verifyModel(m).filter((d) => d.severity === 'error');
}

function codes(m: Model): string[] {
  return errors(m).map((d) => d.code);
}

function thrownCode(m: Model): string | undefined {
  try {
    verifyOrThrow(m);
  } catch (e) {
    if (e instanceof DeltacError) return e.code;
    throw e;
  }
  return undefined;
}

describe('verify', () => {
  it('accepts a well-formed model (and the shared fixtures are verified on load)', () => {
    const m = parseModel(base);
    expect(verifyModel(m)).toEqual([]);
    expect(thrownCode(m)).toBeUndefined();
  });

  it('reports a dangling value: its producer was removed while it is still read', () => {
    const m = parseModel(base);
    const relu = m.graph.lookup('b')!.producer!;
    m.graph.removeNode(relu, true);
    expect(codes(m)).toEqual(['DELTAC_E_DANGLING_VALUE']);
    expect(errors(m)[0]!.message).toMatch(/reads "b", whose producer was removed/);
    expect(thrownCode(m)).toBe('DELTAC_E_DANGLING_VALUE');
  });

  it('reports a graph output that lost its producer', () => {
    const m = parseModel(base);
    m.graph.removeNode(m.graph.lookup('y')!.producer!, true);
    expect(codes(m)).toContain('DELTAC_E_DANGLING_VALUE');
    expect(errors(m).some((d) => d.message.includes('graph output "y"'))).toBe(true);
  });

  it('reports a use list that misses a reader', () => {
    const m = parseModel(base);
    const b = m.graph.lookup('b')!;
    b.uses.length = 0; // corrupt the use-def chain directly
    expect(codes(m)).toEqual(['DELTAC_E_DANGLING_VALUE']);
    expect(errors(m)[0]!.message).toContain('use list misses it');
  });

  it('reports a value read outside its scope as undefined', () => {
    const m = parseModel(base);
    const other = new Graph('other');
    const stranger = other.addInput('stranger', tensorType(DataType.FLOAT, [2, 3]));
    m.graph.lookup('b')!.producer!.setInput(0, stranger);
    expect(codes(m)).toEqual(['DELTAC_E_UNDEFINED_VALUE']);
    expect(errors(m)[0]!.message).toContain('"stranger"');
  });

  it('reports a subgraph value read by the outer graph as undefined', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %i = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%x)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
      %y = Relu(%i)
    }`);
    const inner = m.graph.nodes[0]!.subgraphs()[0]!.lookup('t1')!;
    m.graph.lookup('y')!.producer!.setInput(0, inner);
    expect(codes(m)).toEqual(['DELTAC_E_UNDEFINED_VALUE']);
  });

  it('reports duplicate value names', () => {
    const m = parseModel(base);
    // bypass Graph.rename, which would refuse
    m.graph.lookup('b')!.name = 'a';
    expect(codes(m)).toContain('DELTAC_E_DUPLICATE_NAME');
    expect(errors(m).find((d) => d.code === 'DELTAC_E_DUPLICATE_NAME')!.message).toContain('"a"');
  });

  it('reports a name defined both in a branch and outside it', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%x)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
    }`);
    m.graph.nodes[0]!.subgraphs()[1]!.lookup('e1')!.name = 'y';
    expect(codes(m)).toContain('DELTAC_E_DUPLICATE_NAME');
  });

  it('reports a cycle as an error and a mere misordering as a warning, without reordering', () => {
    const cyclic = parseModel(base);
    cyclic.graph.lookup('a')!.producer!.setInput(0, cyclic.graph.lookup('b')!);
    expect(codes(cyclic)).toEqual(['DELTAC_E_GRAPH_CYCLE']);
    expect(thrownCode(cyclic)).toBe('DELTAC_E_GRAPH_CYCLE');

    const unsorted = parseModel(base);
    const order = [...unsorted.graph.nodes].reverse();
    unsorted.graph.nodes = order;
    const diags = verifyModel(unsorted);
    expect(diags.map((d) => [d.severity, d.code])).toEqual([['warning', 'DELTAC_E_GRAPH_CYCLE']]);
    expect(unsorted.graph.nodes).toEqual(order);
    expect(thrownCode(unsorted)).toBeUndefined();
  });

  it('reports a removed node still listed in its graph', () => {
    const m = parseModel(base);
    m.graph.nodes[1]!.removed = true;
    expect(codes(m)).toContain('DELTAC_E_DANGLING_VALUE');
  });

  it('reports an inline initializer whose size disagrees with its shape', () => {
    const m = parseModel(base);
    const k = m.graph.lookup('k')!;
    k.initializer = Tensor.fromFloat32([1, 2], [3]);
    expect(codes(m)).toEqual(['DELTAC_E_TENSOR_DATA']);
    expect(errors(m)[0]!.message).toContain('holds 8 bytes, expected 12');
  });

  describe('type conflicts between declared and inferred types: warnings, never errors', () => {
    function warnings(m: Model) {
      return verifyModel(m).filter((d) => d.severity === 'warning');
    }

    it('warns about a declared shape that inference contradicts', () => {
      // (the declared type wins downstream, so y is checked against Transpose of f32[2,3])
      const m = parseModel(`graph @g(%x: f32[2,3]) -> (%y: f32[3,2]) {
        %a = Transpose(%x) {perm = [1, 0]} : f32[2,3]
        %y = Transpose(%a) {perm = [1, 0]}
      }`);
      expect(codes(m)).toEqual([]);
      expect(warnings(m).map((d) => d.code)).toEqual(['DELTAC_W_TYPE_CONFLICT']);
      expect(warnings(m)[0]!.message).toContain('"a" is declared f32[2,3] but Transpose');
      expect(warnings(m)[0]!.message).toContain('f32[3,2]');
      expect(warnings(m)[0]!.where).toBe('a');
      expect(thrownCode(m)).toBeUndefined();
    });

    it('warns about a declared element type that inference contradicts', () => {
      const m = parseModel(`graph @g(%x: f32[4]) -> (%y: i64[1]) {
        %y = Shape(%x) : f16[1]
      }`);
      // the graph output's declared type (i64[1]) replaces the node's; declare the conflict on an inner value instead
      expect(verifyModel(m)).toEqual([]);
      const m2 = parseModel(`graph @g(%x: f32[4]) -> (%y: f16[1]) {
        %s = Shape(%x) : f16[1]
        %y = Identity(%s)
      }`);
      expect(warnings(m2).map((d) => d.code)).toEqual(['DELTAC_W_TYPE_CONFLICT']);
      expect(warnings(m2)[0]!.message).toContain('element types differ');
    });

    it('warns about a rank conflict on a graph output; real graph errors are still errors', () => {
      const m = parseModel(`graph @g(%x: f32[batch,4]) -> (%y: f32[batch]) {
        %y = Relu(%x)
      }`);
      expect(warnings(m).map((d) => d.code)).toEqual(['DELTAC_W_TYPE_CONFLICT']);
      expect(warnings(m)[0]!.message).toContain('ranks differ');
      m.graph.nodes[0]!.removed = true;
      expect(codes(m)).toContain('DELTAC_E_DANGLING_VALUE');
      expect(thrownCode(m)).toBe('DELTAC_E_DANGLING_VALUE');
    });

    it('accepts symbolic and unknown dims that do not contradict', () => {
      const m = parseModel(`graph @g(%x: f32[batch,4]) -> (%y: f32[?,4]) {
        %a = Relu(%x) : f32[n,4]
        %y = Neg(%a)
      }`);
      expect(verifyModel(m)).toEqual([]);
    });

    it('skips type checks when asked', () => {
      const m = parseModel(`graph @g(%x: f32[batch,4]) -> (%y: f32[batch]) {
        %y = Relu(%x)
      }`);
      expect(verifyModel(m, { types: false })).toEqual([]);
    });
  });
});
