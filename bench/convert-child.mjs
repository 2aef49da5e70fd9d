// Runs the built `deltac` CLI in this process and prints, as its last line, the exit code, the
// peak RSS and what the CLI printed as JSON (the conversion benchmark starts it as a child
// process, as a user would run deltac; run it with --json to get the report).
import { main } from '../dist/cli/main.js';

const out = [];
const quiet = { out: (t) => out.push(t), err: (t) => process.stderr.write(t + '\n'), interactive: false };
const code = await main(process.argv.slice(2), quiet);
let report = null;
try {
  report = JSON.parse(out.join('\n'));
} catch {
  // not --json
}
process.stdout.write(JSON.stringify({ code, maxRssBytes: process.resourceUsage().maxRSS * 1024, report }) + '\n');
process.exitCode = code;
