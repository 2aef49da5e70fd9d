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

/** The options type a pass takes. */
export type OptionsOf<P> = P extends Pass<infer O> ? O : never;

/**
 * Passes by name; each key is its pass's `name`. (`Pass<unknown>` admits every
 * pass: a method's parameter is compared both ways.)
 */
export type PassMap = Record<string, Pass<unknown>>;

/** Names of the passes in `P` whose options have required fields (they cannot default to `{}`). */
type NeedsOptions<P extends PassMap> = { [K in keyof P]: {} extends OptionsOf<P[K]> ? never : K }[keyof P];

/**
 * Options for running the passes of `P`, keyed by pass name: each pass gets its own
 * options type, and passes with required options must be given them.
 */
export type PassOptions<P extends PassMap> = { [K in keyof P]?: OptionsOf<P[K]> } & { [K in NeedsOptions<P>]: OptionsOf<P[K]> };

/** `run`'s trailing arguments: the options may be left out when no pass needs any. */
type RunArgs<P extends PassMap> = [NeedsOptions<P>] extends [never]
  ? [options?: PassOptions<P>, settings?: PassManagerOptions]
  : [options: PassOptions<P>, settings?: PassManagerOptions];

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

/**
 * Runs passes looked up by name. Typed by its name → pass map, so `run` accepts only
 * known names and, for each, only that pass's options type.
 */
export class PassManager<Passes extends PassMap = PassMap> {
  constructor(private readonly passes: Passes) {
    for (const [name, pass] of Object.entries(passes)) {
      if (pass.name !== name) throw new Error(`pass "${pass.name}" is registered under the name "${name}"`);
    }
  }

  names(): (keyof Passes & string)[] {
    return Object.keys(this.passes);
  }

  /** Whether `name` (e.g. read from a file or the command line) is a registered pass. */
  has(name: string): name is keyof Passes & string {
    return Object.hasOwn(this.passes, name);
  }

  /** The pass named `name`; a name read at run time (a RUN line, a flag) may be any string. */
  get(name: string): Passes[keyof Passes & string] {
    this.assertKnown(name);
    return this.lookup(name);
  }

  private lookup<K extends keyof Passes & string>(name: K): Passes[K] {
    return this.passes[name];
  }

  private assertKnown(name: string): asserts name is keyof Passes & string {
    if (!this.has(name)) throw new DeltacError('DELTAC_E_BAD_OPTION', `unknown pass "${name}"; known passes: ${this.names().join(', ')}`);
  }

  /** Runs the named passes in order; `options[passName]` is handed to that pass (`{}` when absent). */
  run<K extends keyof Passes & string>(
    model: Model,
    names: readonly K[],
    ...[options, settings = {}]: RunArgs<Pick<Passes, K>>
  ): PassRecord[] {
    const records: PassRecord[] = [];
    for (const name of names) {
      this.assertKnown(name); // a caller without the types may name any string
      const pass = this.lookup(name);
      const t0 = performance.now();
      const result = pass.run(model, options?.[name] ?? {});
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
