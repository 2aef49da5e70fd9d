/**
 * One row of the full-size conversion benchmark, in its own process (so that its
 * peak RSS is its own): builds a full-size layout with elided weights (untimed),
 * converts it with a zero checkpoint of the real ΔConvBlock shapes, lowered to
 * standard ONNX as `deltac convert` does, and prints the timing as JSON.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { convertFullSize } from '../test/fixtures/full-size/convert.js';
import type { FullSizeOptions } from '../test/fixtures/full-size/index.js';

const options = JSON.parse(process.argv[2]!) as FullSizeOptions;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-bench-layout-'));
try {
  const t0 = performance.now();
  const { built, report } = convertFullSize(options, dir, 'standard');
  const totalMs = performance.now() - t0;
  const convertMs = report.passes.reduce((a, p) => a + p.ms, 0);
  process.stdout.write(
    JSON.stringify({
      layers: report.layers.filter((l) => l.status === 'converted').length,
      expected: built.selfBlocks.length,
      nodesBefore: report.nodesBefore,
      totalMs,
      convertMs,
      passes: Object.fromEntries(report.passes.map((p) => [p.name, p.ms])),
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    }) + '\n',
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
