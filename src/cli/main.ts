/**
 * `deltac` command line. Exit codes: 0 success, 1 user error (a DeltacError: the
 * message goes to stderr, no stack trace unless --debug), 2 internal error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DeltacError, isDeltacError } from '../ir/errors.js';
import { COMMANDS } from './commands/index.js';
import { type Io, processIo } from './output.js';

export interface CommandContext {
  args: string[];
  io: Io;
  debug: boolean;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(positionals: string[], values: Record<string, unknown>, io: Io): Promise<number | void> | number | void;
}

function usage(): string {
  const lines = [
    'deltac — compiles exported diffusion models into attention-free ones (ΔConvFusion).',
    '',
    'Usage: deltac <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run `deltac <command> --help` for the options of a command. Global: --debug (stack traces), --help, --version.',
  ];
  return lines.join('\n');
}

/**
 * Messages quote names from the input files: escape control characters (newlines,
 * terminal escapes) and bidi overrides so that a hostile file cannot forge output lines.
 */
export function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? 0 : 1;
  }
  if (name === '--version') {
    io.out('deltac 0.1.0');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`deltac: DELTAC_E_BAD_OPTION: unknown command "${name}"\n\n${usage()}`);
    return 1;
  }
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`Usage: ${command.usage}`);
      return 0;
    }
    let parsed: { positionals: string[]; values: Record<string, unknown> };
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true }) as typeof parsed;
    } catch (e) {
      throw new DeltacError('DELTAC_E_BAD_OPTION', `${(e as Error).message}. Usage: ${command.usage}`);
    }
    const code = await command.run(parsed.positionals, parsed.values, io);
    return code ?? 0;
  } catch (e) {
    if (isDeltacError(e)) {
      io.err(`deltac ${name}: ${e.code}: ${oneLine(e.message)}`);
      if (debug) io.err(e.stack ?? '');
      return 1;
    }
    io.err(`deltac ${name}: internal error: ${oneLine((e as Error)?.message ?? String(e))}`);
    io.err(debug ? ((e as Error)?.stack ?? '') : 'Run again with --debug for a stack trace, and report it as a bug.');
    return 2;
  }
}
