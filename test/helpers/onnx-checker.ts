/**
 * onnx's own checker (Python's `onnx` package), for tests that hold deltac's output to
 * it. It needs onnx ≥ 1.16 (IR version 10: function overloads); Debian bookworm's
 * python3-onnx is 1.12. Where there is none the test skips with one loud line, unless
 * DELTAC_REQUIRE_ONNX=1 (.ci/run sets it after installing onnx with pip). The project
 * itself never needs Python.
 *
 *   DELTAC_PYTHON           the interpreter (default python3)
 *   DELTAC_ONNX_PYTHONPATH  a folder holding the onnx package (pip install --target …)
 */
import { execFileSync } from 'node:child_process';
import { systemDependency } from './system.js';

export interface OnnxChecker {
  python: string;
  env: NodeJS.ProcessEnv;
  version: string;
}

/** The IR version of deltac's fused models (function overloads). */
const IR_VERSION = 10;

export function findOnnxChecker(suite: string): OnnxChecker | null {
  const python = process.env.DELTAC_PYTHON ?? 'python3';
  const env = { ...process.env, ...(process.env.DELTAC_ONNX_PYTHONPATH ? { PYTHONPATH: process.env.DELTAC_ONNX_PYTHONPATH } : {}) };
  let version: string | undefined;
  let ir = 0;
  try {
    const out = execFileSync(python, ['-c', 'import onnx; print(onnx.__version__, onnx.IR_VERSION)'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
    [version, ir] = [out.trim().split(' ')[0], Number(out.trim().split(' ')[1])];
  } catch {
    version = undefined;
  }
  const missing =
    version === undefined ? `${python} has no onnx module` : ir < IR_VERSION ? `${python} has onnx ${version}, whose checker knows IR versions up to ${ir} (deltac's fused models are IR ${IR_VERSION})` : null;
  const ok = systemDependency({
    suite,
    missing,
    hint: `pip install 'onnx>=1.16' (Debian bookworm's python3-onnx is 1.12, too old), or point DELTAC_PYTHON / DELTAC_ONNX_PYTHONPATH at one`,
    require: 'DELTAC_REQUIRE_ONNX',
  });
  return ok ? { python, env, version: version! } : null;
}
