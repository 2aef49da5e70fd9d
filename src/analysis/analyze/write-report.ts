/**
 * Writes a `deltac analyze` report folder: `index.html` (tables and pictures),
 * `overview.png` (every layer, one row each), `layers/<n>-<layer>.png` (attention
 * map | attention ERF | ΔConvBlock ERF) and `analysis.json`. Everything is
 * written into a temporary sibling folder first and renamed into place, so a
 * failure leaves nothing half-written; an existing folder is replaced only when it
 * holds an earlier analysis.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import type { AnalysisReport, LayerAnalysis } from './analyze.js';
import { layerPicture, renderIndexHtml } from './html.js';
import { type Panel, renderPanels } from './render-png.js';

export const REPORT_JSON = 'analysis.json';
/** Layers per row of overview.png. */
const OVERVIEW_COLUMNS = 4;

/** Checks that `outDir` can take a report (call before the analysis: fail fast, write nothing). */
export function checkOutputFolder(outDir: string): void {
  const out = path.resolve(outDir);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(out);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) throw new DeltacError('DELTAC_E_WRITE', `output folder "${outDir}" is a file; give a folder name with -o`);
  if (st && fs.readdirSync(out).length && !fs.existsSync(path.join(out, REPORT_JSON))) {
    throw new DeltacError('DELTAC_E_WRITE', `output folder "${outDir}" exists and does not hold an earlier analysis (no ${REPORT_JSON}); choose another folder or empty it`);
  }
  let parent = path.dirname(out);
  while (!fs.existsSync(parent)) parent = path.dirname(parent);
  if (!fs.statSync(parent).isDirectory()) throw new DeltacError('DELTAC_E_WRITE', `cannot create "${outDir}": "${parent}" is a file`);
}

/** A layer's panels; with `withBlock` (some layer of the report has a ΔConvBlock ERF) always three, a blank one where this layer has none. */
function panelsOf(l: LayerAnalysis, withBlock: boolean): Panel[] {
  const blank = (h: number, w: number): Panel => ({ data: new Float64Array(h * w), height: h, width: w });
  const erf = (data: Float64Array | null): Panel => (data ? { data, height: l.height, width: l.width } : blank(l.height, l.width));
  return [
    l.map ? { data: l.map.data, height: 2 * l.height - 1, width: 2 * l.width - 1 } : blank(2 * l.height - 1, 2 * l.width - 1),
    erf(l.attentionErf),
    ...(withBlock ? [erf(l.blockErf)] : []),
  ];
}

const round = (v: number) => (v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(6)));

/** The report as plain JSON (maps and ERFs as row-major arrays, 6 significant digits). */
export function analysisJson(r: AnalysisReport): unknown {
  return {
    ...r,
    layers: r.layers.map((l) => ({
      ...l,
      map: l.map ? { height: 2 * l.height - 1, width: 2 * l.width - 1, rows: l.map.rows, data: Array.from(l.map.data, round) } : null,
      attentionErf: l.attentionErf ? Array.from(l.attentionErf, round) : null,
      blockErf: l.blockErf ? Array.from(l.blockErf, round) : null,
    })),
  };
}

export function writeAnalysisReport(r: AnalysisReport, outDir: string, command?: string): string[] {
  checkOutputFolder(outDir);
  const out = path.resolve(outDir);
  const parent = path.dirname(out);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new DeltacError('DELTAC_E_WRITE', `cannot create "${parent}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = path.join(parent, `.${path.basename(out)}.tmp-${tag}`);
  const old = path.join(parent, `.${path.basename(out)}.old-${tag}`);
  const files: string[] = [];
  try {
    fs.mkdirSync(path.join(tmp, 'layers'), { recursive: true });
    const write = (name: string, data: string | Uint8Array) => {
      fs.writeFileSync(path.join(tmp, name), data);
      files.push(name);
    };
    const withBlock = r.layers.some((l) => l.blockErf);
    r.layers.forEach((l, i) => write(layerPicture(i, l), renderPanels([panelsOf(l, withBlock)], 192)));
    // overview: OVERVIEW_COLUMNS layers per row, each as its 2 or 3 panels
    const rows: Panel[][] = [];
    for (let i = 0; i < r.layers.length; i += OVERVIEW_COLUMNS) rows.push(r.layers.slice(i, i + OVERVIEW_COLUMNS).flatMap((l) => panelsOf(l, withBlock)));
    write('overview.png', renderPanels(rows, 96, withBlock ? 3 : 2));
    write(REPORT_JSON, JSON.stringify(analysisJson(r)));
    write('index.html', renderIndexHtml(r, command));
    let moved = false;
    if (fs.existsSync(out)) {
      fs.renameSync(out, old);
      moved = true;
    }
    try {
      fs.renameSync(tmp, out);
    } catch (e) {
      if (moved) fs.renameSync(old, out);
      throw e;
    }
    if (moved) fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof DeltacError) throw e;
    throw new DeltacError('DELTAC_E_WRITE', `cannot write the report to "${outDir}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (nothing was written)`);
  }
  return files;
}
