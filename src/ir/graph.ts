/**
 * Graphs: inputs, outputs, initializers and nodes, with the mutation API passes use
 * (create/remove nodes, replace uses, add initializers, topological sort, dead-node
 * removal). Subgraphs (If/Loop/Scan bodies) are Graphs whose `parent` is the
 * enclosing graph; their nodes may read the parent's values (captures), and those
 * reads are ordinary uses.
 */
import type { Attribute } from './attribute.js';
import { DeltacError } from './errors.js';
import { Node } from './node.js';
import type { Tensor } from './tensor.js';
import type { ValueType } from './types.js';
import { Value } from './value.js';

export interface NodeSpec {
  domain?: string;
  name?: string;
  attributes?: Record<string, Attribute>;
  /** Output names (made unique) or a count of outputs with generated names. Default 1. */
  outputs?: number | string[];
  /** Insert before this node (default: append at the end). */
  before?: Node;
}

export class Graph {
  name: string;
  docString = '';
  readonly parent: Graph | null;
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** Initializers in file order. */
  readonly initializers = new Map<string, Value>();
  /** Nodes in (topological) order. */
  nodes: Node[] = [];
  metadataProps: [string, string][] = [];
  /** Proto fields deltac does not model (quantization annotations, sparse initializers), carried through. */
  extra: Record<string, unknown> = {};

  /** Values whose scope is this graph, by name. */
  private readonly scope = new Map<string, Value>();
  /** Names taken anywhere in the model (shared by a root graph and all its subgraphs). */
  private readonly names: Set<string>;
  private readonly counters: Map<string, number>;

  constructor(name = 'main', parent: Graph | null = null) {
    this.name = name;
    this.parent = parent;
    this.names = parent ? parent.names : new Set();
    this.counters = parent ? parent.counters : new Map();
  }

  get root(): Graph {
    let g: Graph = this;
    while (g.parent) g = g.parent;
    return g;
  }

  // ---- names and scope ----------------------------------------------------

  /** `base` if free, else `base_1`, `base_2` … (unique in the whole model). */
  uniqueName(base: string): string {
    if (!this.names.has(base) && base !== '') return base;
    let k = this.counters.get(base) ?? 0;
    let name: string;
    do name = `${base}_${++k}`;
    while (this.names.has(name));
    this.counters.set(base, k);
    return name;
  }

  isNameTaken(name: string): boolean {
    return this.names.has(name);
  }

  /** Finds a value by name in this graph or an enclosing one. */
  lookup(name: string): Value | undefined {
    for (let g: Graph | null = this; g; g = g.parent) {
      const v = g.scope.get(name);
      if (v) return v;
    }
    return undefined;
  }

  /** Values defined in this graph's own scope. */
  ownValues(): IterableIterator<Value> {
    return this.scope.values();
  }

  /** Creates a value in this graph's scope; the name must be free. */
  private defineValue(name: string): Value {
    if (this.names.has(name)) {
      throw new DeltacError('DELTAC_E_DUPLICATE_NAME', `value name "${name}" is defined twice in the model`);
    }
    const v = new Value(this, name);
    this.names.add(name);
    this.scope.set(name, v);
    return v;
  }

  rename(v: Value, newName: string): void {
    if (v.name === newName) return;
    if (this.names.has(newName)) {
      throw new DeltacError('DELTAC_E_DUPLICATE_NAME', `cannot rename "${v.name}" to "${newName}": the name is taken`);
    }
    const g = v.graph;
    g.scope.delete(v.name);
    this.names.delete(v.name);
    v.name = newName;
    g.scope.set(newName, v);
    this.names.add(newName);
  }

  private releaseValue(v: Value): void {
    if (v.graph.scope.get(v.name) === v) {
      v.graph.scope.delete(v.name);
      this.names.delete(v.name);
    }
  }

  // ---- building -----------------------------------------------------------

  addInput(name: string, type: ValueType | null): Value {
    const v = this.defineValue(name);
    v.type = type;
    v.typeSource = 'declared';
    this.inputs.push(v);
    return v;
  }

  /** Adds an initializer under `name` (made unique unless `exactName`). */
  addInitializer(name: string, tensor: Tensor, exactName = false): Value {
    const v = this.defineValue(exactName ? name : this.uniqueName(name));
    v.initializer = tensor;
    v.type = { kind: 'tensor', dtype: tensor.dtype, shape: [...tensor.dims] };
    v.typeSource = 'inferred';
    this.initializers.set(v.name, v);
    return v;
  }

  /** Removes an initializer that nothing uses any more. */
  removeInitializer(v: Value): void {
    if (v.uses.length || v.isGraphOutput) {
      throw new DeltacError('DELTAC_E_DANGLING_VALUE', `initializer "${v.name}" is still used`);
    }
    const idx = this.inputs.indexOf(v);
    if (idx >= 0) this.inputs.splice(idx, 1);
    this.initializers.delete(v.name);
    this.releaseValue(v);
  }

  addOutput(v: Value): void {
    this.outputs.push(v);
  }

  /** Creates a node reading `inputs`; its outputs are new values. Returns the node. */
  addNode(opType: string, inputs: (Value | null)[], spec: NodeSpec = {}): Node {
    const node = new Node(this, opType, spec.domain ?? '', spec.name !== undefined ? this.uniqueNodeName(spec.name) : '');
    inputs.forEach((v, i) => node.setInput(i, v));
    for (const [k, a] of Object.entries(spec.attributes ?? {})) node.attributes.set(k, a);
    const outs = spec.outputs ?? 1;
    const names = typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${spec.name || opType}_output_${i}`) : outs;
    for (const n of names) this.addNodeOutput(node, this.uniqueName(n));
    if (spec.before) {
      const idx = this.nodes.indexOf(spec.before);
      this.nodes.splice(idx < 0 ? this.nodes.length : idx, 0, node);
    } else {
      this.nodes.push(node);
    }
    return node;
  }

  /** Single-output convenience: adds the node and returns its output value. */
  op(opType: string, inputs: (Value | null)[], spec: Omit<NodeSpec, 'outputs'> & { output?: string } = {}): Value {
    return this.addNode(opType, inputs, { ...spec, outputs: [spec.output ?? `${spec.name || opType}_output_0`] }).outputs[0]!;
  }

  /** Appends an output value with exactly `name` (used by loaders and the text parser). */
  addNodeOutput(node: Node, name: string): Value {
    const v = this.defineValue(name);
    v.producer = node;
    v.producerIndex = node.outputs.length;
    node.outputs.push(v);
    return v;
  }

  /** Appends an already-built node (loaders); its outputs must already be defined here. */
  appendNode(node: Node): void {
    this.nodes.push(node);
  }

  private nodeNames: Set<string> | null = null;

  private uniqueNodeName(base: string): string {
    if (!this.nodeNames) this.nodeNames = new Set(this.nodes.map((n) => n.name));
    let name = base;
    for (let k = 1; this.nodeNames.has(name); k++) name = `${base}_${k}`;
    this.nodeNames.add(name);
    return name;
  }

  // ---- mutation -----------------------------------------------------------

  /**
   * Removes a node. Its outputs must be unused unless `force` (then readers see a
   * dangling value, which verify() reports). Subgraph uses are detached too.
   */
  removeNode(node: Node, force = false): void {
    if (node.removed) return;
    if (!force) {
      for (const o of node.outputs) {
        if (o.uses.length || o.isGraphOutput) {
          throw new DeltacError(
            'DELTAC_E_DANGLING_VALUE',
            `cannot remove ${node.opType} "${node.name}": its output "${o.name}" is still used`,
          );
        }
      }
    }
    const idx = node.graph.nodes.indexOf(node);
    if (idx >= 0) node.graph.nodes.splice(idx, 1);
    node.removed = true;
    node.detachInputs();
    for (const sub of node.subgraphs()) sub.detachAll();
    for (const o of node.outputs) {
      if (!force || (!o.uses.length && !o.isGraphOutput)) this.releaseValue(o);
    }
  }

  /** Removes many nodes at once (linear time); same rules as removeNode. */
  removeNodes(nodes: Iterable<Node>, force = false): void {
    const set = new Set(nodes);
    if (!set.size) return;
    for (const node of set) {
      if (force) continue;
      for (const o of node.outputs) {
        const external = o.uses.some((u) => !set.has(u.node) && !isInside(u.node, set));
        if (external || o.isGraphOutput) {
          throw new DeltacError(
            'DELTAC_E_DANGLING_VALUE',
            `cannot remove ${node.opType} "${node.name}": its output "${o.name}" is still used`,
          );
        }
      }
    }
    this.nodes = this.nodes.filter((n) => !set.has(n));
    for (const node of set) {
      node.removed = true;
      node.detachInputs();
      for (const sub of node.subgraphs()) sub.detachAll();
    }
    for (const node of set) for (const o of node.outputs) if (!o.uses.length && !o.isGraphOutput) this.releaseValue(o);
  }

  /** Detaches every use made by nodes of this graph and its subgraphs (when its owner is removed). */
  private detachAll(): void {
    for (const n of this.nodes) {
      n.detachInputs();
      for (const sub of n.subgraphs()) sub.detachAll();
    }
  }

  /**
   * Redirects graph output `old` to `replacement`, keeping the output's public name:
   * the replacement is renamed to it (or an Identity carrying the name is inserted
   * when the replacement is itself an input, initializer, output or outer value).
   */
  replaceOutput(old: Value, replacement: Value): void {
    const idx = this.outputs.indexOf(old);
    if (idx < 0) return;
    const publicName = old.name;
    this.rename(old, this.uniqueName(`${publicName}_replaced`));
    let carrier = replacement;
    const canRename =
      replacement.graph === this &&
      replacement.producer !== null &&
      !this.outputs.includes(replacement) &&
      !replacement.isGraphInput;
    if (canRename) {
      this.rename(replacement, publicName);
    } else {
      const id = this.addNode('Identity', [replacement], { outputs: [publicName] });
      carrier = id.outputs[0]!;
      carrier.type = replacement.type;
    }
    carrier.type ??= old.type;
    if (old.typeSource === 'declared') {
      carrier.type = old.type ?? carrier.type;
      carrier.typeSource = 'declared';
    }
    this.outputs[idx] = carrier;
  }

  /**
   * Reorders nodes topologically, keeping the existing order where it is already
   * valid (stable). Throws DELTAC_E_GRAPH_CYCLE on a cycle.
   */
  topologicalSort(): void {
    const inGraph = new Set(this.nodes);
    const state = new Map<Node, 1 | 2>(); // 1 visiting, 2 done
    const order: Node[] = [];
    const deps = (n: Node): Node[] => {
      const out: Node[] = [];
      const add = (v: Value | null) => {
        const p = v?.producer;
        if (!p) return;
        // A capture from a subgraph: depend on the ancestor-level node that produces it.
        if (inGraph.has(p)) out.push(p);
      };
      n.inputs.forEach(add);
      for (const sub of n.subgraphs()) for (const v of sub.captures()) add(v);
      return out;
    };
    for (const start of this.nodes) {
      if (state.get(start) === 2) continue;
      const stack: { node: Node; deps: Node[]; i: number }[] = [{ node: start, deps: deps(start), i: 0 }];
      state.set(start, 1);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        if (top.i < top.deps.length) {
          const d = top.deps[top.i++]!;
          const s = state.get(d);
          if (s === 1) {
            throw new DeltacError(
              'DELTAC_E_GRAPH_CYCLE',
              `graph "${this.name}" has a cycle through ${d.opType} node "${d.name || d.outputs[0]?.name}"`,
            );
          }
          if (s === undefined) {
            state.set(d, 1);
            stack.push({ node: d, deps: deps(d), i: 0 });
          }
        } else {
          state.set(top.node, 2);
          order.push(top.node);
          stack.pop();
        }
      }
    }
    this.nodes = order;
  }

  /** Values read by nodes of this graph (and nested subgraphs) that belong to an enclosing graph. */
  captures(): Set<Value> {
    const out = new Set<Value>();
    const visit = (g: Graph) => {
      for (const n of g.nodes) {
        for (const v of n.inputs) if (v && isAncestor(v.graph, this)) out.add(v);
        for (const sub of n.subgraphs()) visit(sub);
      }
    };
    visit(this);
    return out;
  }

  /**
   * Removes nodes whose outputs nobody reads (repeatedly, including nodes in
   * subgraphs) and returns how many were removed.
   */
  removeDeadNodes(): number {
    let removed = 0;
    const dead = (n: Node) => n.outputs.every((o) => o.uses.length === 0 && !o.isGraphOutput);
    let changed = true;
    while (changed) {
      changed = false;
      const batch = this.nodes.filter(dead);
      if (batch.length) {
        this.removeNodes(batch);
        removed += batch.length;
        changed = true;
      }
    }
    for (const n of this.nodes) for (const sub of n.subgraphs()) removed += sub.removeDeadNodes();
    return removed;
  }

  /** Removes initializers that nothing reads (not graph inputs/outputs). Returns their names. */
  removeUnusedInitializers(): string[] {
    const names: string[] = [];
    for (const v of [...this.initializers.values()]) {
      if (!v.uses.length && !v.isGraphOutput && !v.isGraphInput) {
        this.removeInitializer(v);
        names.push(v.name);
      }
    }
    return names;
  }

  /** Every node of this graph and its subgraphs, depth first. */
  *allNodes(): IterableIterator<Node> {
    for (const n of this.nodes) {
      yield n;
      for (const sub of n.subgraphs()) yield* sub.allNodes();
    }
  }
}

function isAncestor(candidate: Graph, g: Graph): boolean {
  for (let p = g.parent; p; p = p.parent) if (p === candidate) return true;
  return false;
}

/** True when `node` lives in a subgraph owned by one of `owners`. */
function isInside(node: Node, owners: Set<Node>): boolean {
  if (node.graph.parent === null) return false;
  for (const owner of owners) for (const sub of owner.subgraphs()) if (containsNode(sub, node)) return true;
  return false;
}

function containsNode(g: Graph, node: Node): boolean {
  for (const n of g.allNodes()) if (n === node) return true;
  return false;
}
