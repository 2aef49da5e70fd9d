/**
 * The error codes: ERROR_CODES is the single list, every code thrown in src/ is in
 * it, the README's Errors section documents exactly these codes, and the CLI prints any
 * message as one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { oneLine } from '../../src/cli/main.js';
import { ERROR_CODES } from '../../src/ir/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error codes', () => {
  const codes = Object.keys(ERROR_CODES);

  it('are DELTAC_E_ names with a one-line description each', () => {
    expect(codes.length).toBeGreaterThan(20);
    for (const [code, description] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^DELTAC_E_[A-Z][A-Z0-9_]*$/);
      expect(description.length, code).toBeGreaterThan(10);
      expect(description).not.toMatch(/\n/);
    }
  });

  it('every DELTAC_E_ code written in src/ is listed in ERROR_CODES', () => {
    const used = new Set<string>();
    for (const file of sourceFiles(path.join(REPO_ROOT, 'src'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\bDELTAC_E_[A-Z0-9_]+/g)) used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((c) => !codes.includes(c))).toEqual([]);
  });

  it('every code in ERROR_CODES is still raised somewhere in src/ (no dead codes)', () => {
    const text = sourceFiles(path.join(REPO_ROOT, 'src'))
      .filter((f) => path.relative(REPO_ROOT, f) !== path.join('src', 'ir', 'errors.ts'))
      .map((f) => fs.readFileSync(f, 'utf8'))
      .join('\n');
    expect(codes.filter((c) => !new RegExp(`\\b${c}\\b`).test(text))).toEqual([]);
  });

  it("README's Errors section has one table row per code, and no others", () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const doc = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1));
    const rows = [...doc.matchAll(/^\| `(DELTAC_E_[A-Z0-9_]+)` \|([^|]+)\|([^|]+)\|$/gm)];
    expect(rows.map((r) => r[1]).sort()).toEqual([...codes].sort());
    for (const r of rows) {
      expect(r[2]!.trim().length, `${r[1]}: when`).toBeGreaterThan(10);
      expect(r[3]!.trim().length, `${r[1]}: what to do`).toBeGreaterThan(5);
    }
  });
});

describe('warning codes', () => {
  const diagnostics = fs.readFileSync(path.join(REPO_ROOT, 'src/ir/diagnostics.ts'), 'utf8');
  const union = /export type WarningCode =([^;]+);/.exec(diagnostics)?.[1] ?? '';
  const declared = [...union.matchAll(/'(DELTAC_W_[A-Z0-9_]+)'/g)].map((m) => m[1]!);

  it("every DELTAC_W_ code written in src/ is a WarningCode and has a row in the README's Warnings table", () => {
    expect(declared.length).toBeGreaterThanOrEqual(5);
    const used = new Set<string>();
    for (const file of sourceFiles(path.join(REPO_ROOT, 'src'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\bDELTAC_W_[A-Z0-9_]+/g)) used.add(m[0]);
    }
    expect([...used].filter((c) => !declared.includes(c))).toEqual([]);
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('### Warnings');
    expect(start).toBeGreaterThan(readme.indexOf('## Errors'));
    const doc = readme.slice(start, readme.indexOf('\n## ', start));
    const rows = [...doc.matchAll(/^\| `(DELTAC_W_[A-Z0-9_]+)` \|([^|]+)\|([^|]+)\|$/gm)];
    expect(rows.map((r) => r[1]).sort()).toEqual([...used].sort());
    expect(rows.map((r) => r[1]).sort()).toEqual([...declared].sort());
    for (const r of rows) {
      expect(r[2]!.trim().length, `${r[1]}: when`).toBeGreaterThan(10);
      expect(r[3]!.trim().length, `${r[1]}: what to do`).toBeGreaterThan(5);
    }
  });
});

describe('CLI messages stay on one line', () => {
  it('escapes newlines, terminal escapes and bidi overrides; keeps other text', () => {
    expect(oneLine('reads "a\nb\tc\u001b[31m\u202eé"')).toBe('reads "a\\nb\\tc\\u001b[31m\\u202eé"');
    expect(oneLine('plain: "x" → [1, 2]')).toBe('plain: "x" → [1, 2]');
  });
});
