/**
 * The picture of a preview (`compare.png`): the original and the converted image side
 * by side, the per-pixel difference |a − b| (mean over RGB, inferno colour map scaled to
 * its maximum, which the label gives), and below them a plot of how far the latents of
 * the two runs are apart after each step (RMS of the difference relative to the
 * original's RMS, in %). Small images are enlarged (nearest neighbour) to about 256 px.
 *
 * Pure: returns RGBA pixels; the CLI encodes them as PNG (pngjs), a page can put them on
 * a canvas.
 */
import { interpolateInferno } from 'd3-scale-chromatic';
import type { StepDeviation } from '../preview.js';
import type { DecodedImage } from '../vae-decoding.js';
import { GLYPH_HEIGHT, drawText, textWidth } from './bitmap-font.js';

export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, row-major. */
  data: Uint8ClampedArray;
}

type Rgb = [number, number, number];

const MARGIN = 16;
const GAP = 16;
const TEXT = 2;
const LABEL_HEIGHT = GLYPH_HEIGHT * TEXT + 8;
const PLOT_HEIGHT = 220;
const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [215, 215, 215];
const SERIES: Rgb = [214, 96, 28];

function parseColour(css: string): Rgb {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(css);
  if (hex) return [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16), parseInt(hex[3]!, 16)];
  const [r = 0, g = 0, b = 0] = (css.match(/\d+/g) ?? []).map(Number);
  return [r, g, b];
}

const INFERNO: Rgb[] = Array.from({ length: 256 }, (_, i) => parseColour(interpolateInferno(i / 255)));

class Canvas implements RgbaImage {
  readonly data: Uint8ClampedArray;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8ClampedArray(width * height * 4).fill(255);
  }

  set(x: number, y: number, [r, g, b]: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = r;
    this.data[o + 1] = g;
    this.data[o + 2] = b;
    this.data[o + 3] = 255;
  }

  text(s: string, x: number, y: number, colour: Rgb = INK, scale = TEXT): void {
    drawText(s, x, y, scale, (px, py) => this.set(px, py, colour));
  }

  line(x0: number, y0: number, x1: number, y1: number, colour: Rgb, width = 1): void {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let d = 0; d < width; d++) this.set(x, y + d - Math.floor(width / 2), colour);
    }
  }

  box(x: number, y: number, w: number, h: number, colour: Rgb): void {
    for (let dy = 0; dy < h; dy++) for (let dx = 0; dx < w; dx++) this.set(x + dx, y + dy, colour);
  }
}

/** Nearest-neighbour enlargement that makes the longer side about `target` px (at least ×1). */
export function zoomFor(img: DecodedImage, target = 256): number {
  return Math.max(1, Math.floor(target / Math.max(img.height, img.width)));
}

function drawImage(c: Canvas, img: DecodedImage, left: number, top: number, zoom: number, pixel: (p: number) => Rgb): void {
  for (let y = 0; y < img.height * zoom; y++) {
    for (let x = 0; x < img.width * zoom; x++) c.set(left + x, top + y, pixel(Math.floor(y / zoom) * img.width + Math.floor(x / zoom)));
  }
}

/** `v` with 3 significant digits, plain or in e-notation. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.01 && a < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

/** 1, 2 or 5 × 10^k at or above `v`. */
function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= v * (1 - 1e-9))!;
}

export interface ComparisonLabels {
  original: string;
  delta: string;
}

export function renderComparison(original: DecodedImage, delta: DecodedImage, deviation: StepDeviation[], labels: ComparisonLabels): RgbaImage {
  const zoom = zoomFor(original);
  const pw = original.width * zoom;
  const ph = original.height * zoom;
  const width = MARGIN * 2 + pw * 3 + GAP * 2;
  const height = MARGIN + LABEL_HEIGHT + ph + GAP + LABEL_HEIGHT + PLOT_HEIGHT + MARGIN;
  const c = new Canvas(width, height);
  const rgb = (img: DecodedImage) => (p: number): Rgb => [0, 1, 2].map((k) => Math.round(img.data[p * 3 + k]! * 255)) as Rgb;

  const diff = new Float32Array(original.width * original.height);
  let maxDiff = 0;
  for (let p = 0; p < diff.length; p++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += Math.abs(original.data[p * 3 + k]! - (delta.data[p * 3 + k] ?? 0));
    diff[p] = s / 3;
    maxDiff = Math.max(maxDiff, diff[p]!);
  }
  const top = MARGIN + LABEL_HEIGHT;
  const panels: [string, (p: number) => Rgb][] = [
    [labels.original, rgb(original)],
    [labels.delta, rgb(delta)],
    [`|DIFF| MAX ${formatNumber(maxDiff)}`, (p) => INFERNO[maxDiff > 0 ? Math.round((diff[p]! / maxDiff) * 255) : 0]!],
  ];
  panels.forEach(([label, pixel], i) => {
    const left = MARGIN + i * (pw + GAP);
    const fits = textWidth(label, TEXT) <= pw;
    c.text(label, left, MARGIN, INK, fits ? TEXT : 1);
    drawImage(c, original, left, top, zoom, pixel);
  });

  // The plot of the latent deviation per step.
  const plotTop = top + ph + GAP;
  const values = deviation.map((d) => 100 * d.relativeRms);
  const yMax = niceCeil(Math.max(...values, 0));
  const title = 'LATENT DEVIATION PER STEP, %: RMS(DELTA - ORIGINAL) / RMS(ORIGINAL)';
  c.text(title, MARGIN, plotTop, INK, textWidth(title, TEXT) <= width - 2 * MARGIN ? TEXT : 1);
  const axisLeft = MARGIN + textWidth(formatNumber(yMax), TEXT) + 10;
  const axisTop = plotTop + LABEL_HEIGHT;
  const axisBottom = height - MARGIN - LABEL_HEIGHT;
  const axisRight = width - MARGIN - 8;
  for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
    const y = Math.round(axisBottom - frac * (axisBottom - axisTop));
    c.line(axisLeft, y, axisRight, y, frac === 0 ? INK : GRID);
    if (frac === 0 || frac === 1) {
      const label = formatNumber(frac * yMax);
      c.text(label, axisLeft - 8 - textWidth(label, TEXT), y - (GLYPH_HEIGHT * TEXT) / 2, INK);
    }
  }
  c.line(axisLeft, axisTop, axisLeft, axisBottom, INK);
  const n = values.length;
  const xOf = (i: number) => (n > 1 ? axisLeft + 12 + ((axisRight - axisLeft - 24) * i) / (n - 1) : (axisLeft + axisRight) / 2);
  const yOf = (v: number) => axisBottom - (Math.min(v, yMax) / yMax) * (axisBottom - axisTop);
  const every = Math.max(1, Math.ceil(n / 20));
  for (let i = 0; i < n; i++) {
    if (i % every === 0 || i === n - 1) {
      const label = String(i + 1);
      c.text(label, xOf(i) - textWidth(label, TEXT) / 2, axisBottom + 6, INK);
    }
    if (i > 0) c.line(xOf(i - 1), yOf(values[i - 1]!), xOf(i), yOf(values[i]!), SERIES, 2);
  }
  for (let i = 0; i < n; i++) c.box(xOf(i) - 2, yOf(values[i]!) - 2, 5, 5, SERIES);
  return c;
}

/** An image alone, as RGBA (for a page or a PNG encoder). */
export function imageToRgba(img: DecodedImage): RgbaImage {
  const c = new Canvas(img.width, img.height);
  drawImage(c, img, 0, 0, 1, (p) => [0, 1, 2].map((k) => Math.round(img.data[p * 3 + k]! * 255)) as Rgb);
  return c;
}
