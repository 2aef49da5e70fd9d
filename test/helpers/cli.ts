/** Runs the `deltac` CLI in-process with captured output. */
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { expect } from 'vitest';
import { DeltacError } from '../../src/ir/errors.js';

export interface CliResult {
  code: number;
  /** Lines written to stdout / stderr, joined with newlines. */
  out: string;
  err: string;
}

export async function runCli(...argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), interactive: false };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** `CODE: message` of the DeltacError `f` throws, or 'no error'; other exceptions propagate. */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DeltacError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

/** Awaits `p`, which must reject with a DeltacError of `code`, and returns that error. */
export async function expectRejection(p: Promise<unknown>, code: string): Promise<DeltacError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DeltacError);
  expect((e as DeltacError).code).toBe(code);
  return e as DeltacError;
}
