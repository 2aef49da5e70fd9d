/**
 * Tests that need something outside npm (a Vulkan driver, a browser, a C++ compiler, the
 * CUDA toolkit) call `systemDependency` once at the top of the file. Where the thing is
 * missing they skip with one loud line that says what to install — unless the variable
 * `require` names is set to 1 (.ci/run sets it after installing the package), where the
 * missing thing fails the run instead, so CI can never skip a suite silently.
 */
import fs from 'node:fs';

export interface SystemDependency {
  /** What the suite checks, for the message. */
  suite: string;
  /** Why it cannot run here, or null when it can. */
  missing: string | null;
  /** What to install. */
  hint: string;
  /** The environment variable that turns a skip into a failure (e.g. DELTAC_REQUIRE_WEBGPU). */
  require?: string;
}

/** True when the suite can run; false after one loud SKIPPED line; throws when required. */
export function systemDependency({ suite, missing, hint, require }: SystemDependency): boolean {
  if (!missing) return true;
  const message = `${suite}: ${missing}; ${hint}`;
  if (require && process.env[require] === '1') throw new Error(`${message} (${require}=1)`);
  process.stderr.write(`\n*** SKIPPED ${message}\n\n`);
  if (process.env.DELTAC_SKIP_LOG) fs.appendFileSync(process.env.DELTAC_SKIP_LOG, `${message}\n`); // named again at the end of the run (global-setup.ts)
  return false;
}
