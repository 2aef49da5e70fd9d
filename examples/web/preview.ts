/// <reference lib="dom" />
/// <reference types="@webgpu/types" />
/**
 * The preview page (preview.html, bundled by build.ts into examples/out/web/preview.js):
 * a pipeline folder — served next to the page (`npm run web -- --pipeline DIR --weights
 * ckpt`) or picked from the user's disk — run with its own UNet and with the converted
 * one, from the same latents, in onnxruntime-web (WebGPU execution provider when the
 * browser gives an adapter, WebAssembly otherwise; `?ep=wasm` forces it).
 *
 * Everything between reading the folder and the image is deltac's own pipeline code
 * (src/pipeline: folder layout, settings, CLIP tokenizer, schedulers, the denoising loop,
 * decoding, the comparison picture, the figures), the code `deltac preview` runs in
 * onnxruntime-node; this file only adapts onnxruntime-web (ort-web-session.ts) and the
 * browser's files (page-files.ts), and shows the result: both images side by side, each
 * UNet's time per step, totals and speed-up, and — when the folder holds diffusers'
 * reference images (generation.json's "reference", or reference.<model>.npy) and the
 * settings are the folder's own — how far each image is from its reference.
 *
 * A served folder runs as soon as the page opens (`?autorun=0` waits for the button);
 * the results land in the tables and in `window.deltacPreview`, and the root element's
 * `data-status` turns to "done" (or "error"; "ready" while waiting for a folder).
 */
import * as ort from 'onnxruntime-web';
import { DeltacError, isDeltacError } from '../../src/ir/errors.js';
import { UNET_MODEL } from '../../src/pipeline/layout.js';
import { type PipelineParts, type PreviewVariant, type StepDeviation, runPreview } from '../../src/pipeline/preview.js';
import { type ModelOpener, type OpenedPipeline, openPipeline, pipelineParts } from '../../src/pipeline/pipeline-folder.js';
import { imageToRgba, type RgbaImage } from '../../src/pipeline/picture/compare-picture.js';
import { type StepTimes, comparisonPicture, imageDifference, previewFigures } from '../../src/pipeline/preview-summary.js';
import type { TruncatedPrompt } from '../../src/pipeline/prompt-encoding.js';
import { SUPPORTED_SCHEDULERS, schedulerClassName } from '../../src/pipeline/schedulers/index.js';
import { type PreviewRequest, type ResolvedSettings, latentsFromNpy, resolveSettings } from '../../src/pipeline/settings.js';
import type { DecodedImage } from '../../src/pipeline/vae-decoding.js';
import { parseNpy } from '../../src/runtime/npy.js';
import { type ExecutionProvider, type WebGpuLayout, openOrtWebSession } from './ort-web-session.js';
import { type PageFiles, type ServedIndex, externalDataOf, pickedFolder, samePartsPicked, servedFolder } from './page-files.js';

type Role = 'original' | 'delta' | 'unet';

export interface PreviewPageResults {
  status: 'done' | 'error';
  error?: string;
  backend: ExecutionProvider;
  adapter?: { vendor: string; architecture: string; description: string };
  /** The WebGPU EP's layout (ort-web-session.ts: NCHW unless `?layout=nhwc`). */
  layout?: WebGpuLayout;
  pipeline?: { label: string; compare?: string; className: string; source: 'served' | 'picked' };
  settings?: Omit<ResolvedSettings, 'latents'>;
  timesteps: number[];
  /** Per model, in run order: original first. */
  models: (StepTimes & { role: Role })[];
  /** Original / converted UNet time per step: on the median step (as preview.json's `speedup`), over all steps, over steps 2 … n. */
  speedup?: number;
  meanSpeedup?: number;
  warmSpeedup?: number;
  imageDifference?: { maxAbs: number; meanAbs: number };
  deviation: StepDeviation[];
  /** Each image against the folder's reference (only with the folder's own settings). */
  references: { model: Role; file: string; maxAbs: number; meanAbs: number }[];
  truncated: TruncatedPrompt[];
}

declare global {
  interface Window {
    deltacPreview?: PreviewPageResults;
  }
}

const NAMES: Record<Role, string> = { original: 'original', delta: 'ΔConv (converted)', unet: "the folder's UNet" };

interface Folder {
  opened: OpenedPipeline<PageFiles>;
  role: Role;
}

interface Loaded {
  source: 'served' | 'picked';
  main: Folder;
  compare?: Folder;
  sameParts: boolean;
  /** The settings of an empty form: generation.json's, else diffusers' defaults. */
  defaults: ResolvedSettings;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const ms = (x: number) => x.toFixed(1);
const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

function status(line: string): void {
  $('status').textContent = line;
}

function setState(state: 'loading' | 'ready' | 'running' | 'done' | 'error'): void {
  document.documentElement.dataset.status = state;
}

function describeError(err: unknown): string {
  if (isDeltacError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
}

// ---------------------------------------------------------------------------------------
// Backend

type Backend = Pick<PreviewPageResults, 'backend' | 'adapter' | 'layout'>;

async function chooseBackend(): Promise<Backend> {
  ort.env.wasm.wasmPaths = '/ort/';
  const query = new URLSearchParams(location.search);
  const forced = query.get('ep');
  const adapter = forced === 'wasm' || !navigator.gpu ? null : await navigator.gpu.requestAdapter();
  if (!adapter) {
    $('backend').innerHTML = `Execution provider: <b>WebAssembly</b> (${forced === 'wasm' ? 'forced by ?ep=wasm' : 'this browser offers no WebGPU adapter'})`;
    return { backend: 'wasm' };
  }
  const { vendor, architecture, description } = adapter.info;
  const name = [vendor, architecture, description].filter(Boolean).join(' / ');
  const layout: WebGpuLayout = query.get('layout')?.toUpperCase() === 'NHWC' ? 'NHWC' : 'NCHW';
  $('backend').innerHTML =
    `Execution provider: <b>WebGPU</b> — adapter “${escapeHtml(name)}”, ${layout} layout` +
    (layout === 'NHWC' ? ' (onnxruntime-web\'s default, which computes some attention graphs wrong: see the README)' : '') +
    ` (<a href="?ep=wasm">WebAssembly instead</a>)`;
  return { backend: 'webgpu', adapter: { vendor, architecture, description }, layout };
}

// ---------------------------------------------------------------------------------------
// Opening a folder and the settings form

async function readLatentsOf(files: PageFiles, file: string) {
  if (!files.files.has(file)) throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `generation.json names latents "${file}", which "${files.label}" does not hold`);
  return latentsFromNpy(parseNpy(await files.readBytes(file), file), file);
}

async function load(source: Loaded['source'], main: PageFiles, mainRole: Role, compare?: PageFiles, sameParts?: boolean): Promise<Loaded> {
  status(`reading ${main.label}${compare ? ` and ${compare.label}` : ''}…`);
  const m = await openPipeline(main);
  const c = compare ? await openPipeline(compare) : undefined;
  if (c && c.kind !== m.kind) throw new DeltacError('DELTAC_E_BAD_OPTION', `the converted folder "${compare!.label}" is a ${c.layout.className}, "${main.label}" a ${m.layout.className}`);
  const defaults = await resolveSettings({}, m.generation, m.facts, (f) => readLatentsOf(main, f));
  return {
    source,
    main: { opened: m, role: mainRole },
    ...(c ? { compare: { opened: c, role: 'delta' as const } } : {}),
    sameParts: c ? (sameParts ?? (await samePartsPicked(main, compare!))) : false,
    defaults,
  };
}

function fillForm(l: Loaded): void {
  const d = l.defaults;
  input('prompt').value = d.prompt;
  input('negative').value = d.negativePrompt ?? '';
  input('steps').value = String(d.steps);
  input('guidance').value = String(d.guidanceScale);
  input('width').value = String(d.width);
  input('height').value = String(d.height);
  input('width').step = input('height').step = input('width').min = input('height').min = String(l.main.opened.facts.vaeFactor);
  const folderScheduler = schedulerClassName(l.main.opened.facts.scheduler);
  const chosen = schedulerClassName(d.scheduler);
  $<HTMLSelectElement>('scheduler').innerHTML = SUPPORTED_SCHEDULERS.map(
    (s) => `<option value="${s}"${s === chosen ? ' selected' : ''}>${s}${s === folderScheduler ? " (the folder's)" : ''}</option>`,
  ).join('');
  const seed = typeof l.main.opened.generation?.seed === 'number' ? l.main.opened.generation.seed : 0;
  input('seed').value = String(d.seed ?? seed);
  input('use-latents').checked = d.latentsFile !== undefined;
  input('use-latents').disabled = d.latentsFile === undefined;
  $('latents-file').textContent = d.latentsFile ? `${d.latentsFile} (generation.json)` : 'none in the folder';
  const names = (f: Folder) => `${escapeHtml(f.opened.files.label)} (${f.opened.layout.className}, ${f.opened.files.files.size} files, UNet: ${NAMES[f.role]})`;
  $('opened').innerHTML = `Opened ${names(l.main)}${l.compare ? ` and ${names(l.compare)}${l.sameParts ? '; all other files identical' : ''}` : ' — no converted folder: its image alone'}.`;
}

function numberField(id: string, what: string, integer: boolean): number {
  const v = Number(input(id).value);
  if (input(id).value.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `${what} must be ${integer ? 'a whole number' : 'a number'}, got "${input(id).value}"`);
  }
  return v;
}

/** The form as a request: only what differs from the folder's settings, so the rest keeps its source. */
function readForm(l: Loaded): PreviewRequest {
  const d = l.defaults;
  const r: PreviewRequest = {};
  if (input('prompt').value !== d.prompt) r.prompt = input('prompt').value;
  if (input('negative').value !== (d.negativePrompt ?? '')) r.negativePrompt = input('negative').value;
  const steps = numberField('steps', 'steps', true);
  if (steps !== d.steps) r.steps = steps;
  const guidance = numberField('guidance', 'the guidance scale', false);
  if (guidance !== d.guidanceScale) r.guidanceScale = guidance;
  const width = numberField('width', 'the width', true);
  const height = numberField('height', 'the height', true);
  if (width !== d.width || height !== d.height) Object.assign(r, { width, height });
  const scheduler = $<HTMLSelectElement>('scheduler').value;
  if (scheduler !== schedulerClassName(d.scheduler)) r.scheduler = scheduler;
  const seed = numberField('seed', 'the seed', true);
  if (!input('use-latents').checked && (d.latentsFile !== undefined || seed !== d.seed)) r.seed = seed;
  return r;
}

// ---------------------------------------------------------------------------------------
// Running and showing

function drawRgba(img: RgbaImage): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  return canvas;
}

/** The folder's reference image for a model: generation.json's "reference" entry, else reference.<model>.npy. */
function referenceFile(opened: OpenedPipeline<PageFiles>, role: Role): string | undefined {
  const named = (opened.generation?.reference as Record<string, unknown> | undefined)?.[role];
  const file = typeof named === 'string' ? named : `reference.${role}.npy`;
  return opened.files.files.has(file) ? file : undefined;
}

async function compareWithReferences(l: Loaded, settings: ResolvedSettings, images: { role: Role; image: DecodedImage; folder: Folder }[]): Promise<PreviewPageResults['references']> {
  const own = Object.values(settings.sources).every((s) => s !== 'option');
  const found = images.map((x) => ({ ...x, file: referenceFile(l.main.opened, x.role) ?? referenceFile(x.folder.opened, x.role) })).filter((x) => x.file);
  if (!found.length) return [];
  $('references-block').hidden = false;
  const body = $('references').querySelector('tbody')!;
  if (!own) {
    body.innerHTML = `<tr><td colspan="4" class="muted">the settings differ from the folder's generation.json, which its reference images were made with: not compared</td></tr>`;
    return [];
  }
  const out: PreviewPageResults['references'] = [];
  for (const { role, image, file, folder } of found) {
    const files = l.main.opened.files.files.has(file!) ? l.main.opened.files : folder.opened.files;
    const ref = parseNpy(await files.readBytes(file!), file!);
    const expected = { data: ref.data instanceof Float32Array ? ref.data : Float32Array.from(ref.data as Float64Array), height: ref.shape[0] ?? 0, width: ref.shape[1] ?? 0 };
    const d = ref.shape.join(',') === [image.height, image.width, 3].join(',') ? imageDifference(image, expected) : { maxAbs: Infinity, meanAbs: Infinity };
    out.push({ model: role, file: file!, ...d });
    body.insertAdjacentHTML('beforeend', `<tr><td>${NAMES[role]}</td><td>${escapeHtml(file!)}</td><td class="num">${fmt(d.maxAbs)}</td><td class="num">${fmt(d.meanAbs)}</td></tr>`);
  }
  return out;
}

async function run(l: Loaded, backend: Backend): Promise<PreviewPageResults> {
  const provider = backend.backend;
  const resolved = await resolveSettings(readForm(l), l.main.opened.generation, l.main.opened.facts, (f) => readLatentsOf(l.main.opened.files, f));
  const settings: ResolvedSettings = { ...resolved, scheduler: schedulerClassName(resolved.scheduler) };
  const opener =
    (files: PageFiles): ModelOpener =>
    async (file) => {
      status(`loading ${files.label}/${file} on ${provider}…`);
      return openOrtWebSession(`${files.label}/${file}`, await files.readBytes(file), provider, externalDataOf(files, file), backend.layout);
    };
  const folders = [l.main, ...(l.compare ? [l.compare] : [])];
  const parts: PipelineParts[] = [];
  for (const f of folders) parts.push(f === l.compare && l.sameParts ? parts[0]! : await pipelineParts(f.opened, settings.scheduler, opener(f.opened.files)));
  const variants: PreviewVariant[] = folders.map((f, i) => ({ name: f.role, unet: () => opener(f.opened.files)(UNET_MODEL), parts: parts[i]! }));

  const result = await runPreview(variants, settings, {
    onStage: (variant, stage) => status(`${NAMES[variant as Role]}: ${{ encode: 'encoding the prompt', load: 'loading the UNet', denoise: 'denoising', decode: 'decoding the latents' }[stage]} (${provider})…`),
    onStep: (variant, done, total) => status(`${NAMES[variant as Role]}: UNet step ${done}/${total} (${provider})…`),
  });
  const figures = previewFigures(result);

  // images side by side
  $('results').hidden = false;
  const images = $('images');
  images.innerHTML = '';
  for (const [i, v] of result.variants.entries()) {
    const t = figures.models[i]!;
    const fig = document.createElement('figure');
    fig.append(drawRgba(imageToRgba(v.image)));
    fig.insertAdjacentHTML('beforeend', `<figcaption><b>${NAMES[v.name as Role]}</b> — ${v.image.width}×${v.image.height}, ${t.stepMs.length} UNet steps, ${ms(t.warmMeanStepMs)} ms each${t.stepMs.length > 1 ? ' (steps 2–' + t.stepMs.length + ')' : ''}</figcaption>`);
    images.append(fig);
  }
  $('compare').innerHTML = '';
  $('compare-title').hidden = result.variants.length !== 2;
  const comparison = comparisonPicture(result);
  if (comparison) $('compare').append(drawRgba(comparison));

  // time per step
  const two = figures.models.length === 2;
  const table = $('step-times');
  table.querySelector('thead')!.innerHTML = `<tr><th>step</th><th class="num">timestep</th>${figures.models.map((m) => `<th class="num">${NAMES[m.name as Role]} UNet (ms)</th>`).join('')}${two ? '<th class="num">latents apart (RMS, % of original)</th>' : ''}</tr>`;
  table.querySelector('tbody')!.innerHTML = result.variants[0]!.timesteps
    .map((t, i) => {
      const dev = result.deviation[0]?.[i];
      return `<tr><td>${i + 1}</td><td class="num">${Number(t.toFixed(3))}</td>${figures.models.map((m) => `<td class="num">${ms(m.stepMs[i]!)}</td>`).join('')}${two ? `<td class="num">${dev ? (100 * dev.relativeRms).toPrecision(3) : ''}</td>` : ''}</tr>`;
    })
    .join('');
  const foot = (label: string, pick: (m: StepTimes) => number) => `<tr><td colspan="2">${label}</td>${figures.models.map((m) => `<td class="num">${ms(pick(m))}</td>`).join('')}${two ? '<td></td>' : ''}</tr>`;
  const n = result.variants[0]!.timesteps.length;
  table.querySelector('tfoot')!.innerHTML = [
    foot('total', (m) => m.totalMs),
    foot('mean of all steps', (m) => m.meanStepMs),
    ...(n > 1 ? [foot(`mean of steps 2–${n}`, (m) => m.warmMeanStepMs)] : []),
    foot('loading the UNet', (m) => m.loadMs),
  ].join('');
  const where = provider === 'webgpu' ? `WebGPU (${[backend.adapter?.vendor, backend.adapter?.architecture].filter(Boolean).join(' / ')}, ${backend.layout})` : 'WebAssembly';
  $('speedup').innerHTML =
    figures.warmSpeedup !== undefined
      ? `Original UNet time / converted UNet time per step: <b>${figures.warmSpeedup.toFixed(2)}×</b>${n > 1 ? ` (steps 2–${n}; ${figures.meanSpeedup!.toFixed(2)}× over all steps, the first of which pays for set-up${provider === 'webgpu' ? ' and shader compilation' : ''})` : ''} on ${where}, in this browser. The two images differ by up to ${figures.imageDifference!.maxAbs.toFixed(3)} (mean ${figures.imageDifference!.meanAbs.toFixed(4)}) in a channel of [0, 1].`
      : `One UNet: open a converted folder too to compare. ${where}.`;

  const references = await compareWithReferences(
    l,
    settings,
    result.variants.map((v, i) => ({ role: v.name as Role, image: v.image, folder: folders[i]! })),
  );
  const { latents: _latents, ...shown } = settings;
  return {
    status: 'done',
    ...backend,
    pipeline: { label: l.main.opened.files.label, ...(l.compare ? { compare: l.compare.opened.files.label } : {}), className: l.main.opened.layout.className, source: l.source },
    settings: shown,
    timesteps: result.variants[0]!.timesteps,
    models: figures.models.map((m) => ({ ...m, role: m.name as Role })),
    ...(figures.speedup !== undefined ? { speedup: figures.speedup, meanSpeedup: figures.meanSpeedup, warmSpeedup: figures.warmSpeedup } : {}),
    ...(figures.imageDifference ? { imageDifference: figures.imageDifference } : {}),
    deviation: result.deviation[0] ?? [],
    references,
    truncated: result.truncated,
  };
}

// ---------------------------------------------------------------------------------------

async function servedIndex(): Promise<ServedIndex | null> {
  const res = await fetch('/pipeline/index.json');
  return res.ok ? ((await res.json()) as ServedIndex) : null;
}

async function main(): Promise<void> {
  const backend = await chooseBackend();
  let loaded: Loaded | null = null;
  let running = false;
  const runButton = $<HTMLButtonElement>('run');

  const fail = (err: unknown) => {
    const error = describeError(err);
    window.deltacPreview = { status: 'error', error, ...backend, timesteps: [], models: [], deviation: [], references: [], truncated: [] };
    status(`error ${error}`);
    setState('error');
  };
  const go = async () => {
    if (!loaded || running) return;
    running = true;
    runButton.disabled = true;
    setState('running');
    $('references').querySelector('tbody')!.innerHTML = '';
    $('references-block').hidden = true;
    try {
      const results = await run(loaded, backend);
      window.deltacPreview = results;
      const notes = [...(results.settings?.notes ?? []), ...results.truncated.map((t) => `the prompt was cut to the text encoder's 77 tokens, as diffusers does; dropped: "${t.removedText}"`)];
      status(`done (${backend.backend})${notes.length ? `\nnote: ${notes.join('\nnote: ')}` : ''}`);
      setState('done');
    } catch (err) {
      fail(err);
    } finally {
      running = false;
      runButton.disabled = false;
    }
  };
  runButton.addEventListener('click', () => void go());

  let opening = 0;
  const open = async (make: () => Promise<Loaded>) => {
    const ticket = ++opening; // a later pick wins over a slower earlier one
    runButton.disabled = true;
    try {
      const l = await make();
      if (ticket !== opening) return;
      loaded = l;
      fillForm(loaded);
      runButton.disabled = false;
      status('ready: press “Run both pipelines”');
      setState('ready');
    } catch (err) {
      if (ticket !== opening) return;
      loaded = null;
      runButton.disabled = true;
      fail(err);
    }
  };

  const pick = () => {
    const mainFiles = input('pick-main').files;
    if (!mainFiles?.length) return;
    const compareFiles = input('pick-compare').files;
    void open(() => load('picked', pickedFolder(mainFiles), compareFiles?.length ? 'original' : 'unet', compareFiles?.length ? pickedFolder(compareFiles) : undefined));
  };
  input('pick-main').addEventListener('change', pick);
  input('pick-compare').addEventListener('change', pick);

  const served = await servedIndex();
  if (!served) {
    status('open a pipeline folder (the one with model_index.json)');
    setState('ready');
    return;
  }
  const main = served.folders.find((f) => f.slot === 'main')!;
  const compare = served.folders.find((f) => f.slot === 'compare');
  $('served').hidden = false;
  $('served').innerHTML =
    `Served by <code>npm run web</code>: <b>${escapeHtml(main.label)}</b>` +
    (compare ? ` and <b>${escapeHtml(compare.label)}</b> (${served.weights ? `converted from it with ${escapeHtml(served.weights)}` : 'converted'})` : '') +
    '. Or pick folders from your disk:';
  await open(() => load('served', servedFolder(main), compare ? 'original' : main.role, compare ? servedFolder(compare) : undefined, served.sameParts));
  if (loaded && new URLSearchParams(location.search).get('autorun') !== '0') await go();
}

void main();
