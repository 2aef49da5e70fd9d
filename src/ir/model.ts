/** A model: IR version, opset imports, metadata, the main graph, and its local functions. */
import { LocalFunction, calledFunction, indexFunctions } from './function.js';
import { Graph } from './graph.js';
import type { Node } from './node.js';

export class Model {
  irVersion = 8;
  /** Opset imports in file order; '' is the default ONNX domain. */
  readonly opsetImports = new Map<string, number>();
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion = 0;
  docString = '';
  metadataProps: [string, string][] = [];
  graph: Graph;
  /** Model-local functions (FunctionProto), in file order. */
  functions: LocalFunction[] = [];
  /** Model-level proto fields deltac does not model (training_info, configuration), carried through. */
  extra: Record<string, unknown> = {};
  /** Folder the model was loaded from; external data resolves against it. */
  baseDir: string | undefined;
  /** File the model was loaded from (saving refuses to overwrite it without force). */
  sourcePath: string | undefined;

  constructor(graph = new Graph('main')) {
    this.graph = graph;
  }

  opset(domain = ''): number | undefined {
    return this.opsetImports.get(domain) ?? (domain === '' ? this.opsetImports.get('ai.onnx') : undefined);
  }

  /** The local function `node` calls, if any (for many lookups, index once with `indexFunctions`). */
  calledFunction(node: Node): LocalFunction | undefined {
    return calledFunction(indexFunctions(this.functions), node);
  }

  /** Adds an opset import if the model has none for `domain`. */
  requireOpset(domain: string, version: number): void {
    if (!this.opsetImports.has(domain)) this.opsetImports.set(domain, version);
  }
}
