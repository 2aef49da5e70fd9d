/**
 * Golden-graph harness. A case is two files in `test/golden/`:
 *
 *   <name>.input.txt   a hand-written graph in textual IR whose first line is
 *                      `// RUN: <pass> <pass> …` (names separated by spaces or commas)
 *   <name>.golden.txt  the expected textual IR after running those passes in order
 *
 * The harness parses the input, runs the passes through a PassPipeline, checks
 * that the result verifies and that its text parses back to itself, prints it and
 * compares with the golden file. With UPDATE_GOLDEN=1 the golden file is
 * (re)written instead.
 *
 * Passes come from a pipeline, so swapping in the real pass manager is one line
 * in golden.test.ts; until then IR_CLEANUP_PASSES names the IR-level cleanups.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Model } from '../../src/ir/model.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { verifyModel } from '../../src/ir/verify.js';

export const GOLDEN_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Runs the named passes on a model, in order (throws on an unknown name). */
export type PassPipeline = (model: Model, passNames: string[]) => void;

/** A pass as the harness sees it: a function of the model (its result is ignored). */
export type GoldenPass = (model: Model) => unknown;

/** The IR-level cleanups available before the conversion passes exist. */
export const IR_CLEANUP_PASSES: Record<string, GoldenPass> = {
  dce: (m) => m.graph.removeDeadNodes(),
  'remove-unused-initializers': (m) => m.graph.removeUnusedInitializers(),
  toposort: (m) => m.graph.topologicalSort(),
  'infer-shapes': (m) => runInference(m, { apply: true }),
};

/** A pipeline that looks passes up by name in `registry`. */
export function pipelineFromRegistry(registry: Record<string, GoldenPass>): PassPipeline {
  return (model, passNames) => {
    for (const name of passNames) {
      const pass = registry[name];
      if (!pass) {
        throw new Error(`unknown pass "${name}" in a // RUN: line (known: ${Object.keys(registry).sort().join(', ')})`);
      }
      pass(model);
    }
  };
}

export interface GoldenCase {
  name: string;
  inputPath: string;
  goldenPath: string;
  passes: string[];
  input: string;
}

/** Names of the cases in `dir` (every `<name>.input.txt`), sorted. */
export function listGoldenCases(dir = GOLDEN_DIR): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.input.txt'))
    .map((f) => f.slice(0, -'.input.txt'.length))
    .sort();
}

export function readGoldenCase(name: string, dir = GOLDEN_DIR): GoldenCase {
  const inputPath = path.join(dir, `${name}.input.txt`);
  const input = fs.readFileSync(inputPath, 'utf8');
  const first = input.split('\n', 1)[0]!;
  const m = /^\/\/\s*RUN:(.*)$/.exec(first.trim());
  if (!m) throw new Error(`${inputPath}: the first line must be "// RUN: <pass names>"`);
  const passes = m[1]!.split(/[\s,]+/).filter(Boolean);
  return { name, inputPath, goldenPath: path.join(dir, `${name}.golden.txt`), passes, input };
}

export interface GoldenResult {
  /** The printed model after the passes (ends with a newline). */
  actual: string;
  /** The golden file's content, or undefined when it does not exist. */
  expected: string | undefined;
  /** True when the golden file was (re)written (UPDATE_GOLDEN=1). */
  updated: boolean;
  goldenPath: string;
}

export interface GoldenOptions {
  dir?: string;
  /** Rewrite the golden file (default: process.env.UPDATE_GOLDEN === '1'). */
  update?: boolean;
}

/**
 * Runs one case. Throws when the model does not verify after the passes or its
 * text does not parse back to itself; the caller compares `actual` with `expected`.
 */
export function runGoldenCase(
  name: string,
  pipeline: PassPipeline | Record<string, GoldenPass> = IR_CLEANUP_PASSES,
  options: GoldenOptions = {},
): GoldenResult {
  const c = readGoldenCase(name, options.dir);
  const run = typeof pipeline === 'function' ? pipeline : pipelineFromRegistry(pipeline);
  const model = parseModel(c.input, { source: path.basename(c.inputPath) });
  run(model, c.passes);
  const problems = verifyModel(model).filter((d) => d.severity === 'error');
  if (problems.length) {
    throw new Error(`${c.name}: the model does not verify after ${c.passes.join(', ')}:\n${problems.map((d) => `  ${d.code}: ${d.message}`).join('\n')}`);
  }
  const actual = `${printModel(model)}\n`;
  const reprinted = `${printModel(parseModel(actual, { source: `${c.name} (printed)` }))}\n`;
  if (reprinted !== actual) throw new Error(`${c.name}: the printed result does not parse back to the same text`);
  const update = options.update ?? process.env.UPDATE_GOLDEN === '1';
  const expected = fs.existsSync(c.goldenPath) ? fs.readFileSync(c.goldenPath, 'utf8') : undefined;
  if (update && expected !== actual) {
    fs.writeFileSync(c.goldenPath, actual);
    return { actual, expected: actual, updated: true, goldenPath: c.goldenPath };
  }
  return { actual, expected, updated: false, goldenPath: c.goldenPath };
}
