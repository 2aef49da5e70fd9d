/** A model: IR version, opset imports, metadata, the main graph, and functions kept as they are. */
import { Graph } from './graph.js';

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
  /** FunctionProtos, kept exactly as decoded (deltac does not rewrite inside functions). */
  functions: unknown[] = [];
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

  /** Adds an opset import if the model has none for `domain`. */
  requireOpset(domain: string, version: number): void {
    if (!this.opsetImports.has(domain)) this.opsetImports.set(domain, version);
  }
}
