// Runs the built `deltac` CLI in this process and prints its exit code and peak RSS
// (the conversion benchmark starts it as a child process, as a user would run deltac).
import { main } from '../dist/cli/main.js';

const quiet = { out: () => {}, err: (t) => process.stderr.write(t + '\n'), interactive: false };
const code = await main(process.argv.slice(2), quiet);
process.stdout.write(JSON.stringify({ code, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
process.exitCode = code;
