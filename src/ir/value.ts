/** SSA values with use-def chains. */
import type { Graph } from './graph.js';
import type { Node } from './node.js';
import type { Tensor } from './tensor.js';
import type { ValueType } from './types.js';

export interface Use {
  node: Node;
  /** Input slot of `node` that reads the value. */
  index: number;
}

/** Where a value's type came from: the model file (saved back as value_info) or shape inference (not saved). */
export type TypeSource = 'declared' | 'inferred';

export class Value {
  /** Unique in the model. Change it with `Graph.rename`. */
  name: string;
  type: ValueType | null = null;
  typeSource: TypeSource = 'inferred';
  /** The graph whose scope defines this value. */
  readonly graph: Graph;
  producer: Node | null = null;
  /** Output slot of `producer` (meaningful when producer is set). */
  producerIndex = -1;
  /** Every node input slot that reads this value, in any graph (subgraphs capture outer values). */
  readonly uses: Use[] = [];
  /** Set when the value is an initializer. */
  initializer: Tensor | null = null;
  docString = '';
  metadataProps: [string, string][] = [];
  /** True when the model file carried a value_info entry for this value. */
  hasValueInfo = false;
  /** An optional node output the file left unnamed (saved back as ''). */
  omitted = false;

  constructor(graph: Graph, name: string) {
    this.graph = graph;
    this.name = name;
  }

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  get isInitializer(): boolean {
    return this.initializer !== null;
  }

  /** Known static shape, or undefined if the rank or any dim is unknown/symbolic. */
  get staticShape(): number[] | undefined {
    const t = this.type;
    if (!t || t.kind !== 'tensor' || !t.shape) return undefined;
    return t.shape.every((d) => typeof d === 'number') ? (t.shape as number[]) : undefined;
  }

  /** Users other than `except` (distinct nodes). */
  users(): Node[] {
    return [...new Set(this.uses.map((u) => u.node))];
  }

  hasOneUse(): boolean {
    return this.uses.length === 1 && !this.isGraphOutput;
  }

  /**
   * Makes every reader of this value read `other` instead. Graph outputs are
   * redirected as well; the output keeps its public name: `other` takes this
   * value's name and this value gets a fresh one.
   */
  replaceAllUsesWith(other: Value): void {
    if (other === this) return;
    for (const use of [...this.uses]) use.node.setInput(use.index, other);
    this.graph.replaceOutput(this, other);
  }
}
