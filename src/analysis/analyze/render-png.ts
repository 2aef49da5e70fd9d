/**
 * Heatmap pictures for `deltac analyze`: PNG encoding by pngjs, the perceptual
 * colour map (inferno) by d3-scale-chromatic. Each panel is scaled to its own
 * maximum (0 = black, max = pale yellow) and enlarged with nearest-neighbour
 * sampling; panels sit side by side on a white background.
 */
import { interpolateInferno } from 'd3-scale-chromatic';
import pngjs from 'pngjs';

export interface Panel {
  data: ArrayLike<number>;
  height: number;
  width: number;
}

const GAP = 8;

/** 256 RGB entries of the colour map. */
const LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const hex = interpolateInferno(i / 255);
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    const rgb = m ? [m[1], m[2], m[3]].map((h) => parseInt(h!, 16)) : (hex.match(/\d+/g) ?? ['0', '0', '0']).map(Number);
    lut.set(rgb.slice(0, 3), i * 3);
  }
  return lut;
})();

/** Display size of a panel whose longer side becomes `size` pixels (integer zoom, at least 1). */
function zoomOf(p: Panel, size: number): number {
  return Math.max(1, Math.floor(size / Math.max(p.height, p.width)));
}

function drawPanel(png: pngjs.PNG, p: Panel, left: number, top: number, zoom: number): void {
  let max = 0;
  for (let i = 0; i < p.data.length; i++) max = Math.max(max, p.data[i]!);
  for (let y = 0; y < p.height * zoom; y++) {
    for (let x = 0; x < p.width * zoom; x++) {
      const v = p.data[Math.floor(y / zoom) * p.width + Math.floor(x / zoom)]!;
      const c = max > 0 && Number.isFinite(v) ? Math.min(255, Math.max(0, Math.round((v / max) * 255))) : 0;
      const o = ((top + y) * png.width + left + x) * 4;
      png.data[o] = LUT[c * 3]!;
      png.data[o + 1] = LUT[c * 3 + 1]!;
      png.data[o + 2] = LUT[c * 3 + 2]!;
      png.data[o + 3] = 255;
    }
  }
}

/**
 * Rows of panels (each row side by side, rows stacked), every panel about `size` px
 * on its longer side; with `group`, every `group` panels of a row are set apart by
 * a wider gap (several layers' panels in one row).
 */
export function renderPanels(rows: Panel[][], size: number, group = 0): Buffer {
  const gapAfter = (i: number, n: number) => (i === n - 1 ? GAP : group && (i + 1) % group === 0 ? 4 * GAP : GAP);
  const layout = rows.map((row) => row.map((p) => ({ p, zoom: zoomOf(p, size) })));
  const rowHeights = layout.map((row) => Math.max(1, ...row.map(({ p, zoom }) => p.height * zoom)));
  const rowWidths = layout.map((row) => row.reduce((a, { p, zoom }, i) => a + p.width * zoom + gapAfter(i, row.length), GAP));
  const width = Math.max(...rowWidths);
  const height = rowHeights.reduce((a, b) => a + b, 0) + GAP * (rows.length + 1);
  const png = new pngjs.PNG({ width, height });
  png.data.fill(255);
  let top = GAP;
  layout.forEach((row, r) => {
    let left = GAP;
    row.forEach(({ p, zoom }, i) => {
      drawPanel(png, p, left, top + Math.floor((rowHeights[r]! - p.height * zoom) / 2), zoom);
      left += p.width * zoom + gapAfter(i, row.length);
    });
    top += rowHeights[r]! + GAP;
  });
  return pngjs.PNG.sync.write(png);
}
