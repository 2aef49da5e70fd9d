/**
 * Passes and the pass manager. A pass is a named function of (model, options)
 * that returns what it changed and its diagnostics; it never prints. The manager
 * runs passes by name, re-sorts the graph, and verifies the IR after each pass.
 */
import type { Diagnostic } from '../ir/diagnostics.js';
import { DeltacError } from '../ir/errors.js';
import type { Model } from '../ir/model.js';
import { verifyModel } from '../ir/verify.js';

export interface PassResult {
  changed: boolean;
  diagnostics: Diagnostic[];
  /** Pass-specific numbers (nodes removed, layers converted …). */
  stats?: Record<string, number>;
  /** Pass-specific structured output (e.g. the conversion's per-layer table). */
  data?: unknown;
}

export interface Pass<O = Record<string, unknown>> {
  name: string;
  description: string;
  run(model: Model, options: O): PassResult;
}

export interface PassRecord {
  name: string;
  result: PassResult;
  ms: number;
}

export interface PassManagerOptions {
  /** Verify the IR after every pass (default true). */
  verify?: boolean;
  /** Called after each pass (progress output belongs to the caller). */
  onPass?: (record: PassRecord) => void;
}

export class PassManager {
  private readonly registry = new Map<string, Pass<never>>();

  constructor(passes: Pass<never>[] = []) {
    for (const p of passes) this.register(p);
  }

  register(pass: Pass<never>): this {
    this.registry.set(pass.name, pass);
    return this;
  }

  names(): string[] {
    return [...this.registry.keys()];
  }

  get(name: string): Pass<never> {
    const p = this.registry.get(name);
    if (!p) throw new DeltacError('DELTAC_E_BAD_OPTION', `unknown pass "${name}"; known passes: ${this.names().join(', ')}`);
    return p;
  }

  /** Runs the named passes in order; `options[passName]` is handed to that pass. */
  run(model: Model, names: string[], options: Record<string, unknown> = {}, settings: PassManagerOptions = {}): PassRecord[] {
    const records: PassRecord[] = [];
    for (const name of names) {
      const pass = this.get(name);
      const t0 = performance.now();
      const result = (pass as Pass<unknown>).run(model, options[name] ?? {});
      if (result.changed) model.graph.topologicalSort();
      if (settings.verify !== false && result.changed) {
        const errors = verifyModel(model, { types: false }).filter((d) => d.severity === 'error');
        if (errors.length) {
          throw new Error(`pass "${name}" left an invalid IR: ${errors[0]!.code}: ${errors[0]!.message}`);
        }
      }
      const record = { name, result, ms: performance.now() - t0 };
      records.push(record);
      settings.onPass?.(record);
    }
    return records;
  }
}
