/**
 * `npm run bench`: deltac's benchmarks, each a ratio against a baseline measured in
 * the same run. Sections: layers (attention vs ΔConvBlock per layer, onnxruntime
 * CPU), unet (whole UNet step, original vs converted), convert (every full-size
 * layout, graph only: time, layers/s, peak RSS; then SD1.5 and SDXL base with real
 * bytes, default flags + sync vs cp -r + sync, peak RSS, the check's time; --no-check
 * adds that flag, --quick leaves SDXL out), half (F16 vs F32 checkpoint: the casts and convert(), the old
 * per-element cast as the baseline). `npm run bench -- layers unet` runs a
 * subset; `--quick` skips the full-size SD1.5 UNet timings. Results go to
 * bench/results/<section>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '../src/cli/output.js';
import { benchAnalyze } from './analyze.js';
import { benchConvertLayouts, benchConvertReal } from './convert-full.js';
import { benchLayers } from './layers.js';
import { benchHalfCast } from './half-cast.js';
import { benchNonFinite } from './nonfinite.js';
import { benchUnets } from './unet.js';

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const sections = args.filter((a) => !a.startsWith('--'));
const want = (s: string) => sections.length === 0 || sections.includes(s);
const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, date: new Date().toISOString() };

function save(name: string, data: unknown): void {
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify({ machine, results: data }, null, 2) + '\n');
}

const yes = (b: boolean | undefined) => (b === undefined ? '' : b ? 'yes' : 'NO');

if (want('layers')) {
  console.log('\n== one self-attention layer vs its ΔConvBlock (onnxruntime-node CPU, 2 threads, batch 1, median of 7) ==');
  const r = await benchLayers();
  console.log(
    table(
      ['shape', 'attention ms', 'ΔConvBlock ms', 'speed-up', 'FLOP ratio', 'target', 'met'],
      r.map((x) => [x.shape, x.attentionMs.toFixed(1), x.deltaMs.toFixed(1), `${x.speedup.toFixed(1)}×`, `${x.flopRatio.toFixed(1)}×`, `≥ ${x.target}×`, yes(x.met)]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  save('layers', r);
}

if (want('unet')) {
  console.log('\n== one UNet step, converted vs original (onnxruntime-node CPU, batch 1) ==');
  const { steps, floor } = await benchUnets({ full: !quick });
  console.log(
    table(
      ['model', 'resolution', 'original ms', 'converted ms', 'converted/original', 'target', 'met'],
      steps.map((x) => [x.model, `${x.resolution}×${x.resolution}`, x.originalMs.toFixed(0), x.convertedMs.toFixed(0), `${x.ratio.toFixed(2)}×`, x.target ? `≤ ${x.target}×` : '', yes(x.met)]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  console.log('\n== the floor: the converted step vs the same graph with every ΔConvBlock output replaced by zeros (same process, alternating) ==');
  console.log(
    table(
      ['model', 'resolution', 'blocks', 'converted ms', 'floor ms', 'converted/floor', "ΔConvBlocks' share"],
      floor.map((x) => [x.model, `${x.resolution}×${x.resolution}`, String(x.blocks), x.convertedMs.toFixed(0), x.floorMs.toFixed(0), `${x.ratio.toFixed(2)}×`, `${(x.blocksShare * 100).toFixed(1)} %`]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  save('unet', { steps, floor });
}

if (want('convert')) {
  console.log('\n== converting every full-size layout (graph only, elided weights; one child process each) ==');
  const rows = benchConvertLayouts();
  console.log(
    table(
      ['model', 'export', 'layers', 'nodes', 'convert s', 'insert ms/layer', 'layers/s', 'peak RSS', 'complete'],
      rows.map((x) => [x.model, x.style, String(x.layers), String(x.nodes), x.convertSeconds.toFixed(2), x.insertMsPerLayer.toFixed(1), x.layersPerSecond.toFixed(1), `${(x.peakRssBytes / 2 ** 20).toFixed(0)} MiB`, yes(x.complete)]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  save('convert-layouts', rows);
  const flags = args.includes('--no-check') ? ['--no-check'] : [];
  console.log(`\n== deltac convert${flags.length ? ` ${flags.join(' ')}` : ' (default flags)'} + sync vs cp -r of the model folder + sync, real bytes, page cache warm (median of 3 rounds) ==`);
  const r = await benchConvertReal({ quick, flags });
  const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  console.log(
    table(
      ['model', 'weights', 'dtype', 'folder', 'cp -r + sync s', 'convert + sync s', 'ratio', 'peak RSS', 'check s', 'data file', 'target', 'met'],
      r.map((x) => [
        x.model,
        x.storage,
        x.dtype,
        gb(x.folderBytes),
        x.cpSeconds.toFixed(1),
        x.convertSeconds.toFixed(1),
        `${x.ratio.toFixed(2)}×`,
        `${(x.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
        x.checkSeconds === null ? x.check : x.checkSeconds.toFixed(1),
        x.dataFile === 'copy' ? `copy (${gb(x.unreferencedBytes)} unref.)` : x.dataFile,
        `≤ ${x.targetRatio}×, ≤ ${(x.targetRssBytes / 2 ** 20).toFixed(0)} MiB, checked`,
        yes(x.met),
      ]),
      ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l', 'l'],
    ),
  );
  save(flags.length ? 'convert-no-check' : 'convert', r);
}

if (want('weights')) {
  console.log('\n== refusing NaN/Inf weights: the scan of a full-size SD1.5 ΔConvFusion checkpoint vs reading it and vs the conversion ==');
  const r = await benchNonFinite();
  console.log(
    table(
      ['dtype', 'checkpoint', 'read ms', 'scan ms', 'scan GB/s', 'convert ms', 'scan/convert', 'target', 'met'],
      r.map((x) => [x.dtype, `${(x.bytes / 2 ** 20).toFixed(0)} MiB`, x.readMs.toFixed(0), x.scanMs.toFixed(0), x.scanGBps.toFixed(1), x.convertMs.toFixed(0), `${(x.share * 100).toFixed(1)}%`, `≤ ${x.target * 100}%`, yes(x.met)]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  save('weights', r);
}

if (want('half')) {
  console.log('\n== binding an F16 vs an F32 ΔConvFusion checkpoint (full-size SD1.5): per-element casts (before) vs whole-array (after) ==');
  const r = await benchHalfCast();
  console.log(
    table(
      ['cast', 'values', 'per-element ms', 'array ms', 'speed-up'],
      r.casts.map((x) => [x.what, `${(x.elements / 1e6).toFixed(1)} M`, x.oldMs.toFixed(0), x.newMs.toFixed(0), `${x.speedup.toFixed(1)}×`]),
      ['l', 'r', 'r', 'r', 'r'],
    ),
  );
  const c = r.convert;
  console.log(
    table(
      ['convert() sd15-full', 'F32 ms', 'F16 ms before', 'F16 ms after', 'F16/F32 before', 'F16/F32 after', 'target', 'met'],
      [['in memory, min of 5', c.f32Ms.toFixed(0), c.f16OldMs.toFixed(0), c.f16NewMs.toFixed(0), `${c.ratioBefore.toFixed(2)}×`, `${c.ratioAfter.toFixed(2)}×`, `≤ ${c.target}×`, yes(c.met)]],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  save('half', r);
}

if (want('analyze')) {
  console.log('\n== deltac analyze on the full SD1.5 UNet at 512×512 (2 random inputs, with a checkpoint) ==');
  const r = await benchAnalyze();
  console.log(
    table(
      ['model', 'layers', 'seconds', 'peak RSS', 'target', 'met'],
      [[`${r.model} @${r.resolution}`, String(r.layers), r.seconds.toFixed(1), `${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB`, '< 120 s, < 4 GB', yes(r.met)]],
    ),
  );
  save('analyze', r);
}
