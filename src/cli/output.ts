/** Small helpers shared by the CLI commands: formatting, progress, list options. */
import cliProgress from 'cli-progress';
import { DeltacError } from '../ir/errors.js';
import { GATE_KINDS, type GateKind } from '../passes/delta-conv/op.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)} T`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => ((align?.[i] ?? 'l') === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(fmt)].join('\n');
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal (progress bars). */
  interactive: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  interactive: Boolean(process.stderr.isTTY),
};

/** A one-line progress bar on stderr (cli-progress), drawn only when stderr is a terminal. */
export interface ProgressBar {
  update(done: number, total: number, what?: string): void;
  stop(): void;
}

export function progressBar(io: Io, label: string): ProgressBar {
  if (!io.interactive) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% {what}`, clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, what = '') {
      if (!started) bar.start(total, 0, { what: '' });
      started = true;
      bar.setTotal(total);
      bar.update(done, { what: what.length > 48 ? `…${what.slice(-47)}` : what });
    },
    stop: () => started && bar.stop(),
  };
}

/** A comma-separated list of numbers (`--scales 1,0.5`, `--resolution 512,768`). */
export function parseList(text: string | undefined, what: string): number[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(',').map((s) => Number(s.trim()));
  if (!values.length || values.some((v) => !Number.isFinite(v))) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `${what} must be a comma-separated list of numbers, got "${text}"`);
  }
  return values;
}

/** An integer option (`--samples 4`); `positive` also requires ≥ 1 (`--batch 32`). */
export function parseInteger(text: unknown, what: string, positive = false): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || (positive && n < 1)) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `${what} must be a${positive ? ' positive' : 'n'} integer, got "${String(text)}"`);
  }
  return n;
}

/** `--gate simple|sigmoid`. */
export function parseGate(text: unknown): GateKind | undefined {
  if (text === undefined) return undefined;
  if (!GATE_KINDS.includes(text as GateKind)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--gate must be one of ${GATE_KINDS.join(', ')}, got "${String(text)}"`);
  return text as GateKind;
}
