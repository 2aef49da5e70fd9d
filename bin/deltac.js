#!/usr/bin/env node
// deltac command-line entry point (the compiled CLI lives in dist/, built by `npm ci` via the prepare script).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// A command that failed may leave a kernel copy running into a temp file it has already
// removed (a conversion that failed while its save's copy ran): exit once stderr is out.
if (code !== 0) process.stderr.write('', () => process.exit(code));
