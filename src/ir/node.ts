/** Operator nodes. Inputs are Values (null for an omitted optional input). */
import type { Attribute } from './attribute.js';
import { DeltacError } from './errors.js';
import type { Graph } from './graph.js';
import type { Tensor } from './tensor.js';
import type { Value } from './value.js';

export class Node {
  opType: string;
  /** '' is the default ONNX domain (ai.onnx). */
  domain: string;
  name: string;
  overload = '';
  readonly graph: Graph;
  readonly inputs: (Value | null)[] = [];
  readonly outputs: Value[] = [];
  readonly attributes = new Map<string, Attribute>();
  docString = '';
  metadataProps: [string, string][] = [];
  /** Proto fields deltac does not model (device configurations), carried through unchanged. */
  extra: Record<string, unknown> = {};
  /** Set once the node is removed from its graph. */
  removed = false;

  constructor(graph: Graph, opType: string, domain = '', name = '') {
    this.graph = graph;
    this.opType = opType;
    this.domain = domain;
    this.name = name;
  }

  /** `Domain.OpType`, or just `OpType` for the default domain. */
  get qualifiedType(): string {
    return this.domain && this.domain !== 'ai.onnx' ? `${this.domain}.${this.opType}` : this.opType;
  }

  is(opType: string, domain = ''): boolean {
    return this.opType === opType && (this.domain === domain || (domain === '' && this.domain === 'ai.onnx'));
  }

  input(i: number): Value | null {
    return this.inputs[i] ?? null;
  }

  /** Replaces input slot `i`, keeping use lists consistent. */
  setInput(i: number, v: Value | null): void {
    const old = this.inputs[i];
    if (old) {
      const k = old.uses.findIndex((u) => u.node === this && u.index === i);
      if (k >= 0) old.uses.splice(k, 1);
    }
    while (this.inputs.length <= i) this.inputs.push(null);
    this.inputs[i] = v;
    if (v) v.uses.push({ node: this, index: i });
  }

  appendInput(v: Value | null): void {
    this.setInput(this.inputs.length, v);
  }

  /** Drops this node's uses of its inputs (used when removing it). */
  detachInputs(): void {
    for (let i = 0; i < this.inputs.length; i++) this.setInput(i, null);
    this.inputs.length = 0;
  }

  // ---- attributes ---------------------------------------------------------

  attr(name: string): Attribute | undefined {
    return this.attributes.get(name);
  }

  private typed<T extends Attribute['type']>(name: string, type: T): Extract<Attribute, { type: T }> | undefined {
    const a = this.attributes.get(name);
    if (!a) return undefined;
    if (a.type !== type) {
      throw new DeltacError(
        'DELTAC_E_UNSUPPORTED_MODEL',
        `attribute "${name}" of ${this.opType} node "${this.name}" is ${a.type}, expected ${type}`,
      );
    }
    return a as Extract<Attribute, { type: T }>;
  }

  getInt(name: string): number | undefined;
  getInt(name: string, fallback: number): number;
  getInt(name: string, fallback?: number): number | undefined {
    return this.typed(name, 'int')?.value ?? fallback;
  }

  getInts(name: string): number[] | undefined {
    return this.typed(name, 'ints')?.value;
  }

  getFloat(name: string): number | undefined;
  getFloat(name: string, fallback: number): number;
  getFloat(name: string, fallback?: number): number | undefined {
    return this.typed(name, 'float')?.value ?? fallback;
  }

  getString(name: string): string | undefined;
  getString(name: string, fallback: string): string;
  getString(name: string, fallback?: string): string | undefined {
    return this.typed(name, 'string')?.value ?? fallback;
  }

  getTensor(name: string): Tensor | undefined {
    return this.typed(name, 'tensor')?.value;
  }

  /** Subgraphs held by graph/graphs attributes. */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attributes.values()) {
      if (a.type === 'graph') out.push(a.value);
      else if (a.type === 'graphs') out.push(...a.value);
    }
    return out;
  }

  /** Value of `metadata_props[key]` (dynamo exports keep module paths there). */
  meta(key: string): string | undefined {
    return this.metadataProps.find(([k]) => k === key)?.[1];
  }
}
