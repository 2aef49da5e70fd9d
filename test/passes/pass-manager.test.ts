/**
 * The pass manager: runs passes by name in order, hands each its own options,
 * verifies the IR after a pass that changed it, and is typed by its name → pass
 * map, so that a wrong option type for a named pass does not compile (the
 * `@ts-expect-error` lines below are checked by `tsc -p tsconfig.json`, which
 * includes test/: an error that disappears fails the type-check).
 */
import { describe, expect, it } from 'vitest';
import { createPassManager } from '../../src/convert.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import { parseModel } from '../../src/ir/text/build.js';
import { deadCodePass } from '../../src/passes/cleanup/dead-code.js';
import { type Pass, PassManager, type PassRecord } from '../../src/passes/pass-manager.js';
import type { Checkpoint } from '../../src/weights/checkpoint.js';

const TEXT = `model {ir_version = 8, opset_import = {"" = 17}}
graph @main(%x: f32[2,3]) -> (%y: f32[2,3]) {
  %y = Relu(%x)
  %dead = Exp(%x)
  %dead2 = Sigmoid(%dead)
}
`;

interface ScaleOptions {
  factor: number;
  label?: string;
}

/** Records the options it was handed; changes nothing. */
function recordingPass(name: string, seen: unknown[]): Pass<ScaleOptions> {
  return {
    name,
    description: 'records its options',
    run(_model, options) {
      seen.push(options);
      return { changed: false, diagnostics: [], stats: { factor: options.factor ?? -1 } };
    },
  };
}

describe('PassManager', () => {
  it('runs the named passes in order and hands each its own options', () => {
    const seen: unknown[] = [];
    const pm = new PassManager({ dce: deadCodePass, scale: recordingPass('scale', seen) });
    const model = parseModel(TEXT);
    const calls: PassRecord[] = [];
    const records = pm.run(model, ['scale', 'dce', 'scale'], { scale: { factor: 3 } }, { onPass: (r) => calls.push(r) });
    expect(records.map((r) => r.name)).toEqual(['scale', 'dce', 'scale']);
    expect(calls).toEqual(records);
    expect(seen).toEqual([{ factor: 3 }, { factor: 3 }]);
    expect(records[1]!.result.stats).toEqual({ removedNodes: 2 });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Relu']);
  });

  it('hands a pass without options an empty object', () => {
    const seen: unknown[] = [];
    const probe: Pass<{ factor?: number }> = {
      name: 'probe',
      description: 'records its options',
      run(_model, options) {
        seen.push(options);
        return { changed: false, diagnostics: [] };
      },
    };
    const pm = new PassManager({ dce: deadCodePass, probe });
    pm.run(parseModel(TEXT), ['probe']);
    expect(seen).toEqual([{}]);
  });

  it('refuses a name that is not the pass\'s own, and unknown names read at run time', () => {
    expect(() => new PassManager({ cleanup: deadCodePass })).toThrow(/pass "dce" is registered under the name "cleanup"/);
    const pm = createPassManager();
    expect(pm.names()).toEqual(['insert-pyramid-conv', 'dce', 'remove-unused-initializers', 'lower-pyramid-conv', 'fold-constants', 'define-pyramid-conv-functions']);
    expect(pm.has('dce')).toBe(true);
    expect(pm.has('constructor')).toBe(false);
    const fromCommandLine: string = 'no-such-pass';
    expect(pm.has(fromCommandLine)).toBe(false);
    try {
      // A name from outside the program (a RUN line, a flag) is only a string.
      pm.get(fromCommandLine);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DeltacError);
      expect((e as DeltacError).code).toBe('DELTAC_E_BAD_OPTION');
      expect((e as Error).message).toMatch(/unknown pass "no-such-pass"; known passes: insert-pyramid-conv, dce,/);
    }
  });

  it('stops at a pass that leaves an invalid IR, unless verification is off', () => {
    const breaker: Pass = {
      name: 'break',
      description: 'removes a node whose result is still read',
      run(model: Model) {
        model.graph.removeNode(model.graph.nodes.find((n) => n.opType === 'Exp')!, true);
        return { changed: true, diagnostics: [] };
      },
    };
    const pm = new PassManager({ break: breaker });
    expect(() => pm.run(parseModel(TEXT), ['break'])).toThrow(/pass "break" left an invalid IR: DELTAC_/);
    expect(pm.run(parseModel(TEXT), ['break'], {}, { verify: false })).toHaveLength(1);
  });

  it('the conversion needs its checkpoint at run time too', () => {
    const pm = createPassManager();
    // A caller without the types (plain JavaScript) still gets a coded error.
    // @ts-expect-error insert-pyramid-conv needs its options (the checkpoint)
    expect(() => pm.run(parseModel(TEXT), ['insert-pyramid-conv'])).toThrow(/insert-pyramid-conv needs a checkpoint/);
  });
});

/** Compile-time checks only (never called): each `@ts-expect-error` line must be a type error. */
export function typeChecks(model: Model, checkpoint: Checkpoint): void {
  const pm = createPassManager();
  pm.run(model, ['dce', 'fold-constants']);
  pm.run(model, ['insert-pyramid-conv'], { 'insert-pyramid-conv': { checkpoint, gate: 'sigmoid', scales: [1, 0.5] } });
  // @ts-expect-error a checkpoint path where the pass takes an opened Checkpoint
  pm.run(model, ['insert-pyramid-conv'], { 'insert-pyramid-conv': { checkpoint: 'delta.safetensors' } });
  // @ts-expect-error a gate the pass does not know
  pm.run(model, ['insert-pyramid-conv'], { 'insert-pyramid-conv': { checkpoint, gate: 'relu' } });
  // @ts-expect-error insert-pyramid-conv needs its options (the checkpoint)
  pm.run(model, ['dce', 'insert-pyramid-conv']);
  // @ts-expect-error an unknown pass name
  pm.run(model, ['dce', 'no-such-pass'], {});
  const custom = new PassManager({ scale: recordingPass('scale', []) });
  // @ts-expect-error scale's factor is a number
  custom.run(model, ['scale'], { scale: { factor: '3' } });
}
