/** Golden-graph tests: every `<name>.input.txt` here, run through its passes, must print as `<name>.golden.txt`. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/paths.js';
import { IR_CLEANUP_PASSES, type PassPipeline, listGoldenCases, pipelineFromRegistry, runGoldenCase } from './golden.js';

// The passes golden cases may name. When the pass manager lands, this is the line to change.
const PIPELINE: PassPipeline = pipelineFromRegistry(IR_CLEANUP_PASSES);

describe('golden graphs', () => {
  const cases = listGoldenCases();

  it('has hand-written cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(2);
  });

  for (const name of cases) {
    it(name, () => {
      const r = runGoldenCase(name, PIPELINE);
      if (r.expected === undefined) {
        throw new Error(`${r.goldenPath} does not exist; run UPDATE_GOLDEN=1 npx vitest run test/golden to create it`);
      }
      expect(r.actual).toBe(r.expected);
    });
  }
});

describe('golden harness', () => {
  const tmp = makeTempDir('deltac-golden-');
  afterAll(tmp.cleanup);
  const write = (name: string, text: string) => fs.writeFileSync(path.join(tmp.dir, name), text);

  const input = `// RUN: dce, toposort
graph @g(%x: f32[2]) -> (%y: f32[2]) {
  %y = Relu(%a)
  %a = Neg(%x)
  %dead = Exp(%x)
}
`;
  const expected = `model {ir_version = 8, opset_import = {"" = 17}}
graph @g(%x: f32[2]) -> (%y: f32[2]) {
  %a = Neg(%x)
  %y = Relu(%a) : f32[2]
}
`;

  it('creates and then accepts the golden file with update, and reports a difference without it', () => {
    write('case.input.txt', input);
    const first = runGoldenCase('case', PIPELINE, { dir: tmp.dir, update: false });
    expect(first.expected).toBeUndefined();
    expect(first.actual).toBe(expected);
    const created = runGoldenCase('case', PIPELINE, { dir: tmp.dir, update: true });
    expect(created.updated).toBe(true);
    expect(fs.readFileSync(path.join(tmp.dir, 'case.golden.txt'), 'utf8')).toBe(expected);
    const again = runGoldenCase('case', PIPELINE, { dir: tmp.dir, update: true });
    expect(again.updated).toBe(false);
    write('case.golden.txt', expected.replace('Neg', 'Abs'));
    const stale = runGoldenCase('case', PIPELINE, { dir: tmp.dir, update: false });
    expect(stale.actual).not.toBe(stale.expected);
  });

  it('runs passes in the order of the RUN line', () => {
    write('order.input.txt', input.replace('// RUN: dce, toposort', '// RUN: toposort'));
    const seen: string[][] = [];
    const spy: PassPipeline = (model, names) => {
      seen.push(names);
      PIPELINE(model, names);
    };
    const r = runGoldenCase('order', spy, { dir: tmp.dir, update: false });
    expect(seen).toEqual([['toposort']]);
    expect(r.actual).toContain('%dead = Exp(%x)');
  });

  it('accepts a plain registry object as well as a pipeline', () => {
    write('reg.input.txt', input);
    const r = runGoldenCase('reg', IR_CLEANUP_PASSES, { dir: tmp.dir, update: false });
    expect(r.actual).toBe(expected);
  });

  it('refuses unknown passes, a missing RUN line, and results that do not verify', () => {
    write('unknown.input.txt', input.replace('dce', 'no-such-pass'));
    expect(() => runGoldenCase('unknown', PIPELINE, { dir: tmp.dir })).toThrow(/unknown pass "no-such-pass"/);
    write('norun.input.txt', input.split('\n').slice(1).join('\n'));
    expect(() => runGoldenCase('norun', PIPELINE, { dir: tmp.dir })).toThrow(/RUN:/);
    write('broken.input.txt', input);
    const breaking: PassPipeline = (model) => model.graph.removeNode(model.graph.lookup('a')!.producer!, true);
    expect(() => runGoldenCase('broken', breaking, { dir: tmp.dir })).toThrow(/does not verify.*\n.*DELTAC_E_DANGLING_VALUE/);
  });
});
