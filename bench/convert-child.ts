/**
 * Runs `deltac convert` in this process and prints its peak RSS (used by the
 * conversion benchmark, which starts it as a child process).
 */
import { main } from '../src/cli/main.js';

const silent = { out: () => {}, err: (t: string) => process.stderr.write(t + '\n'), interactive: false };
const code = await main(process.argv.slice(2), silent);
process.stdout.write(JSON.stringify({ code, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
process.exitCode = code;
