/** The Graph mutation API passes use: building, use lists, replacement, removal, sorting, DCE. */
import { describe, expect, it } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import { Graph } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import type { Node } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printGraph } from '../../src/ir/text/printer.js';
import { tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';
import { verifyModel } from '../../src/ir/verify.js';

const f32 = (...shape: (number | string)[]) => tensorType(DataType.FLOAT, shape);

/** Use list of a value as readable strings `Op#slot@graph`. */
function usesOf(v: Value): string[] {
  return v.uses.map((u) => `${u.node.opType}#${u.index}@${u.node.graph.name}`).sort();
}

function names(nodes: Node[]): string[] {
  return nodes.map((n) => n.name || n.outputs[0]!.name);
}

function errorCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof DeltacError) return e.code;
    throw e;
  }
  return undefined;
}

function value(g: Graph, name: string): Value {
  const v = g.lookup(name);
  if (!v) throw new Error(`no value ${name}`);
  return v;
}

describe('building graphs with the API', () => {
  it('creates inputs, initializers and nodes with consistent use lists', () => {
    const model = new Model();
    const g = model.graph;
    const x = g.addInput('x', f32('batch', 4));
    const w = g.addInitializer('w', Tensor.fromFloat32(new Float32Array(16), [4, 4]));
    const mm = g.addNode('MatMul', [x, w], { name: 'proj' });
    const y = g.op('Add', [mm.outputs[0]!, mm.outputs[0]!], { output: 'y' });
    g.addOutput(y);

    expect(mm.name).toBe('proj');
    expect(mm.outputs.map((o) => o.name)).toEqual(['proj_output_0']);
    expect(mm.outputs[0]!.producer).toBe(mm);
    expect(mm.outputs[0]!.producerIndex).toBe(0);
    expect(usesOf(x)).toEqual(['MatMul#0@main']);
    expect(usesOf(w)).toEqual(['MatMul#1@main']);
    // one node reading a value twice has two uses
    expect(usesOf(mm.outputs[0]!)).toEqual(['Add#0@main', 'Add#1@main']);
    expect(w.isInitializer).toBe(true);
    expect(w.type).toEqual(f32(4, 4));
    expect(y.isGraphOutput).toBe(true);
    expect(verifyModel(model)).toEqual([]);
  });

  it('makes generated value names and node names unique', () => {
    const g = new Graph();
    const x = g.addInput('x', f32(2));
    const a = g.addNode('Relu', [x], { name: 'act' });
    const b = g.addNode('Relu', [x], { name: 'act' });
    expect([a.name, b.name]).toEqual(['act', 'act_1']);
    expect(a.outputs[0]!.name).toBe('act_output_0');
    expect(b.outputs[0]!.name).toBe('act_output_0_1');
    const c = g.addNode('Split', [x], { outputs: 3 });
    expect(c.outputs.map((o) => o.name)).toEqual(['Split_output_0', 'Split_output_1', 'Split_output_2']);
    const w1 = g.addInitializer('w', Tensor.fromInt64([1]));
    const w2 = g.addInitializer('w', Tensor.fromInt64([2]));
    expect([w1.name, w2.name]).toEqual(['w', 'w_1']);
    expect(errorCode(() => g.addInitializer('w', Tensor.fromInt64([3]), true))).toBe('DELTAC_E_DUPLICATE_NAME');
    expect(errorCode(() => g.addInput('x', f32(2)))).toBe('DELTAC_E_DUPLICATE_NAME');
  });

  it('inserts a node before another one', () => {
    const g = new Graph();
    const x = g.addInput('x', f32(2));
    const last = g.addNode('Relu', [x], { name: 'last' });
    g.addNode('Neg', [x], { name: 'first', before: last });
    expect(names(g.nodes)).toEqual(['first', 'last']);
  });

  it('shares one name space between a graph and its subgraphs, with lexical lookup', () => {
    const g = new Graph('main');
    const x = g.addInput('x', f32(2));
    const sub = new Graph('body', g);
    const inner = sub.op('Neg', [x], { output: 'inner' });
    expect(sub.lookup('x')).toBe(x);
    expect(g.lookup('inner')).toBeUndefined();
    expect(sub.lookup('inner')).toBe(inner);
    expect(g.isNameTaken('inner')).toBe(true);
    expect(g.uniqueName('inner')).toBe('inner_1');
    expect(errorCode(() => g.addInput('inner', f32(2)))).toBe('DELTAC_E_DUPLICATE_NAME');
    expect(sub.root).toBe(g);
  });

  it('renames values and refuses taken names', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %y = Neg(%a)
    }`);
    const g = m.graph;
    const a = value(g, 'a');
    g.rename(a, 'b');
    expect(a.name).toBe('b');
    expect(g.lookup('a')).toBeUndefined();
    expect(g.lookup('b')).toBe(a);
    expect(errorCode(() => g.rename(a, 'y'))).toBe('DELTAC_E_DUPLICATE_NAME');
    expect(printGraph(g)).toContain('%y = Neg(%b)');
  });
});

describe('use lists', () => {
  const text = `graph @g(%x: f32[2], %z: f32[2]) -> (%y: f32[2]) {
    %a = Relu(%x)
    %b = Mul(%a, %a)
    %y = Add(%b, %x)
  }`;

  it('setInput moves exactly one use', () => {
    const g = parseModel(text).graph;
    const [a, b, x, z] = ['a', 'b', 'x', 'z'].map((n) => value(g, n));
    const mul = b!.producer!;
    mul.setInput(1, z!);
    expect(usesOf(a!)).toEqual(['Mul#0@g']);
    expect(usesOf(z!)).toEqual(['Mul#1@g']);
    mul.setInput(0, null);
    expect(a!.uses).toEqual([]);
    expect(mul.inputs[0]).toBeNull();
    expect(usesOf(x!)).toEqual(['Add#1@g', 'Relu#0@g']);
  });

  it('appendInput extends the inputs and records the use at the new slot', () => {
    const g = parseModel(text).graph;
    const add = value(g, 'y').producer!;
    add.appendInput(value(g, 'z'));
    expect(add.inputs.length).toBe(3);
    expect(usesOf(value(g, 'z'))).toEqual(['Add#2@g']);
  });

  it('replaceAllUsesWith redirects every reader, subgraph readers included', () => {
    const m = parseModel(`graph @g(%x: f32[2], %x2: f32[2], %c: bool[]) -> (%y: f32[2], %w: f32[2]) {
      %a = Relu(%x)
      %y = Add(%a, %x)
      %w = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%x)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Abs(%a)
      }}
    }`);
    const g = m.graph;
    const x = value(g, 'x');
    const x2 = value(g, 'x2');
    x.replaceAllUsesWith(x2);
    expect(x.uses).toEqual([]);
    expect(usesOf(x2)).toEqual(['Add#1@g', 'Neg#0@t', 'Relu#0@g']);
    const a = value(g, 'a');
    const n = g.op('Neg', [x2], { output: 'n' });
    a.replaceAllUsesWith(n);
    expect(usesOf(n)).toEqual(['Abs#0@e', 'Add#0@g']);
    expect(verifyModel(m).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('replaceAllUsesWith on a graph output keeps the public output name', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %y = Relu(%x)
    }`);
    const g = m.graph;
    const oldY = value(g, 'y');
    const s = g.op('Sigmoid', [value(g, 'x')], { output: 's' });
    oldY.replaceAllUsesWith(s);
    expect(g.outputs).toEqual([s]);
    expect(s.name).toBe('y');
    expect(oldY.name).toBe('y_replaced');
    // the declared output type moves with the public name
    expect(s.type).toEqual(f32(2));
    expect(s.typeSource).toBe('declared');
    expect(g.removeDeadNodes()).toBe(1);
    expect(printGraph(g)).toBe(
      ['graph @g(%x: f32[2]) -> (%y: f32[2]) {', '  %y = Sigmoid(%x) : f32[2]', '}'].join('\n'),
    );
  });
});

describe('replaceOutput', () => {
  it('inserts an Identity carrying the name when the replacement is a graph input', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %y = Relu(%x)
    }`);
    const g = m.graph;
    g.replaceOutput(value(g, 'y'), value(g, 'x'));
    const out = g.outputs[0]!;
    expect(out.name).toBe('y');
    expect(out.producer?.opType).toBe('Identity');
    expect(out.producer?.inputs[0]).toBe(value(g, 'x'));
    expect(value(g, 'x').name).toBe('x');
    g.removeDeadNodes();
    expect(names(g.nodes)).toEqual(['y']);
    expect(verifyModel(m)).toEqual([]);
  });

  it('inserts an Identity when the replacement is already another output', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2], %z: f32[2]) {
      %y = Relu(%x)
      %z = Neg(%x)
    }`);
    const g = m.graph;
    g.replaceOutput(value(g, 'y'), value(g, 'z'));
    expect(g.outputs.map((o) => o.name)).toEqual(['y', 'z']);
    expect(g.outputs[0]!.producer!.opType).toBe('Identity');
    expect(g.outputs[0]!.producer!.inputs[0]).toBe(g.outputs[1]);
  });

  it('inserts an Identity when the replacement is an initializer', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      @k: f32[2] = tensor<f32[2]> [1.0, 2.0]
      %y = Relu(%x)
    }`);
    const g = m.graph;
    g.replaceOutput(value(g, 'y'), value(g, 'k'));
    expect(g.outputs[0]!.name).toBe('y');
    expect(g.outputs[0]!.producer!.opType).toBe('Identity');
    expect(value(g, 'k').isInitializer).toBe(true);
  });

  it('ignores values that are not outputs', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %a = Neg(%x)
      %y = Relu(%a)
    }`);
    const g = m.graph;
    g.replaceOutput(value(g, 'a'), value(g, 'x'));
    expect(g.outputs.map((o) => o.name)).toEqual(['y']);
    expect(value(g, 'a').name).toBe('a');
  });
});

describe('removing nodes', () => {
  const chain = `graph @g(%x: f32[2]) -> (%y: f32[2]) {
    %a = Relu(%x)
    %b = Neg(%a)
    %y = Abs(%x)
  }`;

  it('refuses to remove a node whose output is read, then removes it once unused', () => {
    const g = parseModel(chain).graph;
    const relu = value(g, 'a').producer!;
    const neg = value(g, 'b').producer!;
    expect(errorCode(() => g.removeNode(relu))).toBe('DELTAC_E_DANGLING_VALUE');
    expect(errorCode(() => g.removeNode(value(g, 'y').producer!))).toBe('DELTAC_E_DANGLING_VALUE');
    g.removeNode(neg);
    expect(neg.removed).toBe(true);
    expect(value(g, 'a').uses).toEqual([]);
    expect(g.lookup('b')).toBeUndefined();
    g.removeNode(relu);
    expect(usesOf(value(g, 'x'))).toEqual(['Abs#0@g']);
    expect(names(g.nodes)).toEqual(['y']);
    // released names can be defined again, exactly
    expect(g.op('Relu', [value(g, 'x')], { output: 'a' }).name).toBe('a');
  });

  it('force-removing a used node leaves a dangling value that verify reports', () => {
    const m = parseModel(chain);
    const g = m.graph;
    const relu = value(g, 'a').producer!;
    g.removeNode(relu, true);
    const diags = verifyModel(m);
    expect(diags.map((d) => d.code)).toContain('DELTAC_E_DANGLING_VALUE');
    expect(diags.find((d) => d.code === 'DELTAC_E_DANGLING_VALUE')!.message).toContain('"a"');
  });

  it('removing an If drops the uses its branches made of outer values', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %dead = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
      %y = Abs(%x)
    }`);
    const g = m.graph;
    expect(usesOf(value(g, 'a'))).toEqual(['Neg#0@t']);
    g.removeNode(value(g, 'dead').producer!);
    expect(value(g, 'a').uses).toEqual([]);
    expect(usesOf(value(g, 'x'))).toEqual(['Abs#0@g', 'Relu#0@g']);
    expect(usesOf(value(g, 'c'))).toEqual([]);
  });

  it('removeNodes removes a connected group at once and refuses outside readers', () => {
    const g = parseModel(chain).graph;
    const relu = value(g, 'a').producer!;
    const neg = value(g, 'b').producer!;
    expect(errorCode(() => g.removeNodes([relu]))).toBe('DELTAC_E_DANGLING_VALUE');
    g.removeNodes([relu, neg]);
    expect(names(g.nodes)).toEqual(['y']);
    expect(usesOf(value(g, 'x'))).toEqual(['Abs#0@g']);
    expect(g.lookup('a')).toBeUndefined();
  });

  it('removeNodes accepts an If together with the producer its branch captures', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %dead = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
      %y = Abs(%x)
    }`);
    const g = m.graph;
    g.removeNodes([value(g, 'a').producer!, value(g, 'dead').producer!]);
    expect(names(g.nodes)).toEqual(['y']);
    expect(verifyModel(m)).toEqual([]);
  });
});

describe('topologicalSort', () => {
  it('leaves an already sorted graph in its order (stable)', () => {
    const g = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2], %z: f32[2]) {
      %c = Neg(%x)
      %a = Relu(%x)
      %b = Abs(%x)
      %y = Add(%a, %b)
      %z = Add(%c, %a)
    }`).graph;
    const before = [...g.nodes];
    g.topologicalSort();
    expect(g.nodes).toEqual(before);
  });

  it('moves producers before their readers and keeps independent nodes in order', () => {
    const m = new Model();
    const g = m.graph;
    const x = g.addInput('x', f32(2));
    const a = g.op('Relu', [x], { output: 'a' });
    const b = g.op('Neg', [a], { output: 'b' });
    const i1 = g.op('Abs', [x], { output: 'i1' });
    const i2 = g.op('Exp', [x], { output: 'i2' });
    g.addOutput(b);
    g.addOutput(i1);
    g.addOutput(i2);
    // reverse order: b before a, and the independent ones swapped
    g.nodes = [b.producer!, i2.producer!, i1.producer!, a.producer!];
    g.topologicalSort();
    const order = names(g.nodes);
    expect(order.indexOf('a')).toBeLessThan(order.indexOf('b'));
    expect(order.indexOf('i2')).toBeLessThan(order.indexOf('i1'));
    expect(order).toEqual(['a', 'b', 'i2', 'i1']);
  });

  it('orders a node after the producers its subgraphs capture', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
      %a = Relu(%x)
    }`);
    const g = m.graph;
    expect(names(g.nodes)).toEqual(['y', 'a']);
    const warnings = verifyModel(m);
    expect(warnings.map((d) => [d.severity, d.code])).toEqual([['warning', 'DELTAC_E_GRAPH_CYCLE']]);
    g.topologicalSort();
    expect(names(g.nodes)).toEqual(['a', 'y']);
    expect(verifyModel(m)).toEqual([]);
  });

  it('finds a cycle that closes through a subgraph capture', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
    }`);
    const g = m.graph;
    // a now reads the If's output while the If's branch reads a
    value(g, 'a').producer!.setInput(0, value(g, 'y'));
    expect(errorCode(() => g.topologicalSort())).toBe('DELTAC_E_GRAPH_CYCLE');
    const errors = verifyModel(m).filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.code)).toEqual(['DELTAC_E_GRAPH_CYCLE']);
  });

  it('throws DELTAC_E_GRAPH_CYCLE on a cycle and keeps the node list', () => {
    const g = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %b = Neg(%a)
      %y = Abs(%b)
    }`).graph;
    value(g, 'a').producer!.setInput(0, value(g, 'b'));
    const before = [...g.nodes];
    expect(errorCode(() => g.topologicalSort())).toBe('DELTAC_E_GRAPH_CYCLE');
    expect(g.nodes).toEqual(before);
  });

  it('detects a self loop', () => {
    const g = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %y = Add(%x, %x)
    }`).graph;
    const add = g.nodes[0]!;
    add.setInput(1, add.outputs[0]!);
    expect(errorCode(() => g.topologicalSort())).toBe('DELTAC_E_GRAPH_CYCLE');
  });
});

describe('dead-node removal', () => {
  it('removes chains of unused nodes and counts them', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %s = Shape(%x)
      %i = Gather(%s, @zero) {axis = 0}
      %j = Mul(%i, %i)
      %y = Relu(%x)
      @zero: i64[] = tensor<i64[]> [0]
    }`);
    const g = m.graph;
    expect(g.removeDeadNodes()).toBe(3);
    expect(names(g.nodes)).toEqual(['y']);
    expect(value(g, 'zero').uses).toEqual([]);
    expect(value(g, 'zero').isInitializer).toBe(true);
    expect(g.removeUnusedInitializers()).toEqual(['zero']);
    expect(g.initializers.size).toBe(0);
    expect(g.removeDeadNodes()).toBe(0);
  });

  it('keeps a multi-output node when any output is read', () => {
    const g = parseModel(`graph @g(%x: f32[4]) -> (%y: f32[2]) {
      %p, %q = Split(%x) {axis = 0, num_outputs = 2}
      %y = Relu(%q)
    }`).graph;
    expect(g.removeDeadNodes()).toBe(0);
    expect(g.nodes.length).toBe(2);
  });

  it('keeps an outer producer alive when a branch reads it, and cleans inside branches', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %unused = Sigmoid(%x)
      %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
        %inner_dead = Exp(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
    }`);
    const g = m.graph;
    expect(g.removeDeadNodes()).toBe(2); // Sigmoid, and Exp inside the branch
    expect(names(g.nodes)).toEqual(['a', 'y']);
    const thenBranch = value(g, 'y').producer!.subgraphs()[0]!;
    expect(names(thenBranch.nodes)).toEqual(['t1']);
    expect(usesOf(value(g, 'a'))).toEqual(['Neg#0@t']);
    expect([...thenBranch.captures()].map((v) => v.name)).toEqual(['a']);
    expect(verifyModel(m)).toEqual([]);
  });

  it('removes a dead If and then the producer only its branch read', () => {
    const m = parseModel(`graph @g(%x: f32[2], %c: bool[]) -> (%y: f32[2]) {
      %a = Relu(%x)
      %dead = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Neg(%a)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
      %y = Abs(%x)
    }`);
    expect(m.graph.removeDeadNodes()).toBe(2);
    expect(names(m.graph.nodes)).toEqual(['y']);
    expect(verifyModel(m)).toEqual([]);
  });

  it('keeps initializers that are graph inputs or read inside subgraphs', () => {
    const m = parseModel(`graph @g(%x: f32[2], @k: f32[2], %c: bool[]) -> (%y: f32[2]) {
      @k: f32[2] = tensor<f32[2]> [1.0, 2.0]
      @used_in_branch: f32[2] = tensor<f32[2]> [3.0, 4.0]
      @unused: f32[2] = tensor<f32[2]> [5.0, 6.0]
      %y = If(%c) {then_branch = graph @t() -> (%t1: f32[2]) {
        %t1 = Add(%x, @used_in_branch)
      }, else_branch = graph @e() -> (%e1: f32[2]) {
        %e1 = Identity(%x)
      }}
    }`);
    expect(m.graph.removeUnusedInitializers()).toEqual(['unused']);
    expect([...m.graph.initializers.keys()]).toEqual(['k', 'used_in_branch']);
    expect(m.graph.inputs.map((v) => v.name)).toEqual(['x', 'k', 'c']);
  });

  it('refuses to remove an initializer that is still read', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      @k: f32[2] = tensor<f32[2]> [1.0, 2.0]
      %y = Add(%x, @k)
    }`);
    expect(errorCode(() => m.graph.removeInitializer(value(m.graph, 'k')))).toBe('DELTAC_E_DANGLING_VALUE');
  });
});

describe('nodes', () => {
  it('reads typed attributes and refuses the wrong kind', () => {
    const g = new Graph();
    const x = g.addInput('x', f32(2));
    const n = g.addNode('Foo', [x], {
      domain: 'com.example',
      attributes: { axis: attr.int(-1), alpha: attr.float(0.1), mode: attr.string('linear'), perm: attr.ints([0, 2, 1]) },
    });
    expect(n.qualifiedType).toBe('com.example.Foo');
    expect(n.is('Foo')).toBe(false);
    expect(n.is('Foo', 'com.example')).toBe(true);
    expect(n.getInt('axis')).toBe(-1);
    expect(n.getInt('missing', 7)).toBe(7);
    expect(n.getFloat('alpha')).toBe(Math.fround(0.1));
    expect(n.getString('mode')).toBe('linear');
    expect(n.getInts('perm')).toEqual([0, 2, 1]);
    expect(errorCode(() => n.getInt('mode'))).toBe('DELTAC_E_UNSUPPORTED_MODEL');
  });

  it('treats ai.onnx as the default domain', () => {
    const g = new Graph();
    const n = g.addNode('Relu', [g.addInput('x', f32(2))], { domain: 'ai.onnx' });
    expect(n.is('Relu')).toBe(true);
    expect(n.qualifiedType).toBe('Relu');
  });

  it('reads node metadata', () => {
    const m = parseModel(`graph @g(%x: f32[2]) -> (%y: f32[2]) {
      %y = Relu(%x) meta {"pkg.torch.onnx.name_scopes" = "['', 'down_blocks.0']"}
    }`);
    expect(m.graph.nodes[0]!.meta('pkg.torch.onnx.name_scopes')).toBe("['', 'down_blocks.0']");
    expect(m.graph.nodes[0]!.meta('other')).toBeUndefined();
  });
});
