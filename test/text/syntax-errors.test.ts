/** Textual-IR errors carry DELTAC_E_TEXT_SYNTAX, the source name and the line of the problem. */
import { describe, expect, it } from 'vitest';
import { DeltacError } from '../../src/ir/errors.js';
import { parseModel } from '../../src/ir/text/build.js';

function parseError(text: string): DeltacError {
  try {
    parseModel(text, { source: 'case.txt' });
  } catch (e) {
    if (e instanceof DeltacError) return e;
    throw e;
  }
  throw new Error('expected a parse error');
}

const head = 'graph @g(%x: f32[2]) -> (%y: f32[2]) {';

/** [what, text, line, message fragment] — the bad construct is always on `line`. */
const CASES: [string, string, number, string][] = [
  ['unclosed argument list', `${head}\n  %y = Relu(%x\n}`, 3, 'RParen'],
  ['stray character', `${head}\n  %y = Relu(%x) $\n}`, 2, "->$<-"],
  ['undefined value', `${head}\n  %a = Relu(%x)\n  %y = Relu(%zz)\n}`, 3, 'reads %zz, which is not defined'],
  ['value defined twice', `${head}\n  %y = Relu(%x)\n  %y = Neg(%x)\n}`, 3, 'defined twice'],
  ['initializer read with %', `${head}\n  @w: f32[2] = tensor<f32[2]> [1.0, 2.0]\n  %y = Add(%x, %w)\n}`, 3, 'write @w'],
  ['value read with @', `${head}\n  %a = Relu(%x)\n  %y = Add(%x, @a)\n}`, 3, 'write %a'],
  ['tensor literal of the wrong size', `${head}\n  %y = Relu(%x)\n  @w: f32[3] = tensor<f32[3]> [1.0]\n}`, 3, '1 elements for shape [3]'],
  ['tensor literal in an attribute', `${head}\n  %y = Relu(%x) {t = tensor<f32[2]> [1.0]}\n}`, 2, '1 elements for shape [2]'],
  ['symbolic dims in a tensor literal', `${head}\n  %y = Relu(%x)\n  @w: f32[n] = tensor<f32[n]> [1.0]\n}`, 3, 'dims must be numbers'],
  ['unknown element type', `graph @g(%x: f32[2],\n  %z: qq[2]) -> (%y: f32[2]) {\n  %y = Relu(%x)\n}`, 2, 'unknown element type "qq"'],
  ['undefined graph output', `graph @g(%x: f32[2]) -> (\n  %nope: f32[2]) {\n  %y = Relu(%x)\n}`, 2, 'graph output nope is not defined'],
  ['misspelt loc', `${head}\n  %y = Relu(%x) lox("a")\n}`, 2, ''],
  ['misspelt tensor keyword', `${head}\n  %y = Relu(%x)\n  @w: f32[2] = tensr<f32[2]> [1.0, 2.0]\n}`, 3, 'expected "tensor"'],
  ['misspelt elided', `${head}\n  %y = Relu(%x)\n  @w: f32[2] = tensor<f32[2]> elidd("sha256:0")\n}`, 3, 'expected "elided" or "external"'],
  ['misspelt graph keyword', `grap @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x)\n}`, 1, 'expected "graph"'],
  ['mixed list', `${head}\n  %y = Relu(%x) {a = [1, "s"]}\n}`, 2, 'mixes int and string'],
  ['unknown list kind', `${head}\n  %y = Relu(%x)\n  %z = Relu(%x) {a = flots [1.0]}\n}`, 3, 'unknown list kind "flots"'],
  ['unterminated string', `${head}\n  %y = Relu(%x) loc("abc)\n}`, 2, ''],
  ['missing closing brace', `${head}\n  %y = Relu(%x)\n`, 3, ''],
];

describe('syntax errors', () => {
  for (const [what, text, line, fragment] of CASES) {
    it(`${what}: line ${line}`, () => {
      const e = parseError(text);
      expect(e.code).toBe('DELTAC_E_TEXT_SYNTAX');
      expect(e.message).toMatch(new RegExp(`^case\\.txt:${line}(:\\d+)?: `));
      expect(e.message).toContain(fragment);
    });
  }

  it('reports a column for parser errors', () => {
    const e = parseError(`${head}\n  %y = Relu(%x) {a = }\n}`);
    expect(e.message).toMatch(/^case\.txt:2:22: /);
  });

  it('names <text> when no source is given', () => {
    expect(() => parseModel('graph')).toThrow(/^<text>/);
  });
});
