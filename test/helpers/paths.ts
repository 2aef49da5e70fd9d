/** Where the test suite finds the shared fixtures and keeps its caches. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding package.json). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The shared fixture models (`../shared/models` next to the repository; override with DELTAC_MODELS). */
export const MODELS_DIR = process.env.DELTAC_MODELS ?? path.resolve(REPO_ROOT, '../shared/models');

/** The ONNX conformance corpus (`../shared/conformance`; override with DELTAC_CONFORMANCE). */
export const CONFORMANCE_DIR = process.env.DELTAC_CONFORMANCE ?? path.resolve(REPO_ROOT, '../shared/conformance');

/** Caches that survive test runs (gitignored): synthesized weights for sd15-full. */
export const CACHE_DIR = process.env.DELTAC_CACHE ?? path.join(REPO_ROOT, 'bench/cache');

export function modelPath(name: string, file = 'model.onnx'): string {
  return path.join(MODELS_DIR, name, file);
}

/** A fresh temporary folder (in `parent`, default the system's), removed by the returned cleanup function. */
export function makeTempDir(prefix = 'deltac-test-', parent = os.tmpdir()): { dir: string; cleanup: () => void; fresh: () => string } {
  fs.mkdirSync(parent, { recursive: true });
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  let cases = 0;
  return {
    dir,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    /** A new empty folder in it (case1, case2, …): one per test case. */
    fresh: () => {
      const sub = path.join(dir, `case${++cases}`);
      fs.mkdirSync(sub);
      return sub;
    },
  };
}

/** Lists a folder, or [] when it is gone. */
export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}
