/**
 * Shared helpers of the hostile-input tests: run the CLI in-process, check the
 * error contract (exit 1, one `deltac <cmd>: DELTAC_E_…: …` line, no stack), and
 * write hostile safetensors files byte by byte.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { type ErrorCode, isDeltacError } from '../../src/ir/errors.js';
import { type CliResult, runCli as cli } from '../helpers/cli.js';
import { listDir, modelPath } from '../helpers/paths.js';

export const PIXART = modelPath('pixart-mini');
export const PIXART_WEIGHTS = modelPath('pixart-mini', 'delta.safetensors');

export { type CliResult, cli };

/** Runs `f`, expects a DeltacError with `code`, returns it. */
export function expectCode(f: () => unknown, code: ErrorCode): Error {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}, nothing was thrown`).toBeDefined();
  expect(isDeltacError(thrown), `expected a DeltacError, got ${String((thrown as Error)?.stack ?? thrown)}`).toBe(true);
  expect((thrown as { code: string }).code, (thrown as Error).message).toBe(code);
  return thrown as Error;
}

/**
 * The CLI's user-error contract: exit code 1, exactly one stderr line
 * `deltac <command>: <code>: <message>`, no stack frames, nothing on stdout.
 */
export function expectUserError(r: CliResult, command: string, code: ErrorCode): void {
  expect(r.code, r.err).toBe(1);
  const lines = r.err.split('\n').filter((l) => l !== '');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^deltac ${command}: ${code}: \\S`));
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.out).toBe('');
}

/**
 * `deltac convert model --weights weights -o <dir>/out.onnx` must fail with `code`
 * and leave the output folder exactly as it was (no model, no data file, no temp file).
 */
export async function expectConvertFails(model: string, weights: string, outDir: string, code: ErrorCode): Promise<CliResult> {
  fs.mkdirSync(outDir, { recursive: true });
  const before = listDir(outDir);
  const r = await cli('convert', model, '--weights', weights, '-o', path.join(outDir, 'out.onnx'));
  expectUserError(r, 'convert', code);
  expect(listDir(outDir)).toEqual(before);
  return r;
}

/** A safetensors file from its parts; `headerLength` overrides the real length of `header`. */
export function writeRawSafetensors(file: string, header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): void {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
}

/** A named pipe (reading it would block forever without a writer). */
export function makeFifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

/** Runs `f` and returns how long it took and how much the resident set grew. */
export function measure<T>(f: () => T): { ms: number; rssGrowth: number; result?: T; error?: unknown } {
  const rss = process.memoryUsage().rss;
  const started = performance.now();
  try {
    const result = f();
    return { ms: performance.now() - started, rssGrowth: process.memoryUsage().rss - rss, result };
  } catch (error) {
    return { ms: performance.now() - started, rssGrowth: process.memoryUsage().rss - rss, error };
  }
}
