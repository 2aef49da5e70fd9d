/**
 * `node --import tsx test/helpers/deltac-bin.ts <command> …`: the CLI from the
 * sources in a process of its own, as `bin/deltac.js` runs it from dist/ (tests that
 * send it signals or measure its memory).
 */
import { main } from '../../src/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
if (code !== 0) process.stderr.write('', () => process.exit(code)); // as bin/deltac.js
