/**
 * Ctrl-C, `kill` and a closed terminal (SIGINT, SIGTERM, SIGHUP) while a command
 * writes files: the command's handler cleans up (a save aborts, removing its temp
 * files), one line says what happened, and the process exits with the usual code,
 * 128 + the signal's number (130, 143, 129). SIGKILL cannot be caught: the next save
 * to the same output removes what it left (src/onnx/temp-files.ts).
 */
import os from 'node:os';

export const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type Interrupt = (typeof INTERRUPTS)[number];

export function exitCodeOf(signal: Interrupt): number {
  return 128 + os.constants.signals[signal];
}

/**
 * Until the returned function is called, an interrupt runs `cleanup(signal)` (which
 * returns the line to print), writes the line to stderr and exits.
 */
export function onInterrupt(cleanup: (signal: Interrupt) => string): () => void {
  const handler = (signal: Interrupt) => {
    let line: string;
    try {
      line = cleanup(signal);
    } catch (e) {
      line = `interrupted by ${signal}; cleaning up failed: ${(e as Error).message}`;
    }
    try {
      process.stderr.write(`\n${line}\n`);
    } catch {
      // the terminal is gone (SIGHUP): exit all the same
    }
    process.exit(exitCodeOf(signal));
  };
  for (const s of INTERRUPTS) process.on(s, handler);
  return () => {
    for (const s of INTERRUPTS) process.off(s, handler);
  };
}
