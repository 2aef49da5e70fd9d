/**
 * vitest global setup: suites that skip for a missing system package (helpers/system.ts)
 * append their line to one file per run, and the run ends by naming them all again, so a
 * skipped suite is seen in the last lines of `npm test`, not only somewhere in its middle.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const log = path.join(os.tmpdir(), `deltac-test-skips-${process.pid}.log`);

export function setup(): void {
  fs.rmSync(log, { force: true });
  process.env.DELTAC_SKIP_LOG = log;
}

export function teardown(): void {
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    return; // nothing was skipped
  }
  fs.rmSync(log, { force: true });
  const unique = [...new Set(lines)].sort();
  process.stderr.write(`\n*** ${unique.length} suite(s) SKIPPED for a missing system package:\n${unique.map((l) => `  - ${l}`).join('\n')}\n`);
}
