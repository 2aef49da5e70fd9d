/**
 * Lists the conformance outputs that shape inference leaves unknown (or gets wrong), grouped by
 * the operator that produces them, biggest group first: where the next shape rule pays most.
 *   npx tsx test/conformance/coverage-by-op.ts       (counts per operator)
 *   npx tsx test/conformance/coverage-by-op.ts -v    (and every output: inferred vs real)
 * The comparison is the suite's own (output-shapes.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadModelWithReport } from '../../src/onnx/load.js';
import { CONFORMANCE_DIR, listDir, makeTempDir } from '../helpers/paths.js';
import { type ExpectedOutput, checkOutputs } from './output-shapes.js';

const tmp = makeTempDir('deltac-coverage-');
try {
  execFileSync('tar', ['-xzf', path.join(CONFORMANCE_DIR, 'onnx-node-tests.tar.gz'), '-C', tmp.dir]);
  const root = path.join(tmp.dir, 'onnx-node-tests');
  const groups = new Map<string, string[]>();
  const counts = { exact: 0, unknown: 0, wrong: 0 };
  for (const test of listDir(root)) {
    const file = path.join(root, test, 'model.onnx');
    if (!fs.existsSync(file)) continue;
    const expected = (JSON.parse(fs.readFileSync(path.join(root, test, 'expected.json'), 'utf8')) as { outputs: ExpectedOutput[] }).outputs;
    for (const o of checkOutputs(test, loadModelWithReport(file).model, expected)) {
      counts[o.verdict]++;
      if (o.verdict === 'exact') continue;
      const lines = groups.get(o.op) ?? [];
      lines.push(`${o.verdict} ${test}/${o.output}: inferred ${o.inferred}, real ${o.expected}`);
      groups.set(o.op, lines);
    }
  }
  console.log(`exact ${counts.exact}, unknown ${counts.unknown}, wrong ${counts.wrong}`);
  for (const [op, lines] of [...groups].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))) {
    console.log(`${String(lines.length).padStart(4)}  ${op}`);
    if (process.argv.includes('-v')) for (const l of lines) console.log(`        ${l}`);
  }
} finally {
  tmp.cleanup();
}
