/**
 * The installed entry point: `node bin/deltac.js …` runs dist/cli/main.js. dist is
 * built by `npm ci` (prepare); when it is missing or older than src/, it is
 * rebuilt here first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, modelPath } from '../helpers/paths.js';

const MAIN_JS = path.join(REPO_ROOT, 'dist/cli/main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  const built = fs.existsSync(MAIN_JS) ? fs.statSync(MAIN_JS).mtimeMs : 0;
  if (built >= newestSource(path.join(REPO_ROOT, 'src'))) return;
  const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'pipe' });
  } catch (e) {
    // Type errors elsewhere in src/ still emit JavaScript; only a missing entry point is fatal.
    if (!fs.existsSync(MAIN_JS)) throw e;
  }
}

function deltac(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/deltac.js'), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/deltac.js', () => {
  beforeAll(ensureBuilt, 120_000);

  it('inspects sd15-full without its external files (exit 0)', () => {
    const r = deltac('inspect', modelPath('sd15-full', 'model.graph.onnx'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^sample\s+f32\[batch,4,height,width\]$/m);
    expect(r.stdout).toMatch(/MISSING\s+384 external data file\(s\)/);
  });

  it('prints --json on stdout', () => {
    const r = deltac('inspect', modelPath('pixart-mini'), '--json');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout) as { nodes: number; inputs: { name: string; type: string }[] };
    expect(s.nodes).toBe(1093); // 1090 top-level nodes and 3 inside the If's branches
    expect(s.inputs[0]).toEqual({ name: 'hidden_states', type: 'f32[batch,4,16,12]' });
  });

  it('exits 1 with the error code and no stack trace on a user error', () => {
    const r = deltac('inspect', 'no/such/model.onnx');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('deltac inspect: DELTAC_E_FILE_NOT_FOUND: model file "no/such/model.onnx" does not exist');
  });

  it('shows the stack with --debug', () => {
    const r = deltac('--debug', 'inspect', 'no/such/model.onnx');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/DeltacError: model file "no\/such\/model\.onnx" does not exist\n\s+at /);
  });
});
