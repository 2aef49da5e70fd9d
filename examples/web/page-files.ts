/// <reference lib="dom" />
/**
 * A pipeline folder as the preview page reads it (`PipelineFiles` of src/pipeline/layout.ts,
 * plus bytes): a folder the server serves next to the page (`npm run web -- --pipeline DIR`,
 * listed at /pipeline/index.json), or one the user picks from their disk
 * (`<input type=file webkitdirectory>`: every file with its path under the folder).
 */
import { DeltacError } from '../../src/ir/errors.js';
import type { PipelineFiles } from '../../src/pipeline/layout.js';
import type { ExternalDataFile } from './ort-web-session.js';

export interface PageFiles extends PipelineFiles {
  readBytes(path: string): Promise<Uint8Array>;
  /** What onnxruntime-web reads an external-data file from: its URL (served) or the File (picked). */
  source(path: string): string | Blob;
}

/** /pipeline/index.json, written by examples/web/pipeline-serving.ts. */
export interface ServedIndex {
  folders: { slot: 'main' | 'compare'; role: 'original' | 'delta'; label: string; files: Record<string, number> }[];
  weights?: string;
  sameParts: boolean;
}

const urlOf = (slot: string, path: string) => `/pipeline/${slot}/${path.split('/').map(encodeURIComponent).join('/')}`;

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new DeltacError('DELTAC_E_FILE_READ', `${url}: HTTP ${res.status}`);
  return res;
}

export function servedFolder(folder: ServedIndex['folders'][0]): PageFiles {
  const files = new Map(Object.entries(folder.files));
  return {
    label: folder.label,
    files,
    readText: async (path) => (await fetchOk(urlOf(folder.slot, path))).text(),
    readBytes: async (path) => new Uint8Array(await (await fetchOk(urlOf(folder.slot, path))).arrayBuffer()),
    source: (path) => urlOf(folder.slot, path),
  };
}

/**
 * The files of a picked folder. Each File's `webkitRelativePath` is `<folder>/<path>`;
 * the folder's name labels it. (An empty folder gives no files at all, so nothing to name.)
 */
export function pickedFolder(list: ArrayLike<File>): PageFiles {
  const byPath = new Map<string, File>();
  let label = '';
  for (const file of Array.from(list)) {
    const full = file.webkitRelativePath || file.name;
    const slash = full.indexOf('/');
    label ||= slash > 0 ? full.slice(0, slash) : 'picked files';
    byPath.set(slash > 0 ? full.slice(slash + 1) : full, file);
  }
  if (!byPath.size) throw new DeltacError('DELTAC_E_PIPELINE_FOLDER', 'the picked folder holds no files; pick the pipeline\'s top folder (the one with model_index.json)');
  const get = (path: string) => {
    const f = byPath.get(path);
    if (!f) throw new DeltacError('DELTAC_E_FILE_READ', `"${label}" has no ${path}`);
    return f;
  };
  return {
    label,
    files: new Map([...byPath].map(([p, f]) => [p, f.size])),
    readText: (path) => get(path).text(),
    readBytes: async (path) => new Uint8Array(await get(path).arrayBuffer()),
    source: (path) => get(path),
  };
}

/**
 * The external-data files a component's model may name: the other files of its folder
 * (`unet/model.onnx_data`, `unet/weights.pb`, …) but configs and text. onnxruntime-web
 * takes them by the path the model gives (relative to the model's folder).
 */
export function externalDataOf(files: PageFiles, model: string): ExternalDataFile[] {
  const folder = model.slice(0, model.lastIndexOf('/') + 1);
  return [...files.files.keys()]
    .filter((p) => p.startsWith(folder) && p !== model && !/\.(json|txt|md)$/i.test(p) && !p.slice(folder.length).startsWith('.'))
    .map((p) => ({ path: p.slice(folder.length), data: files.source(p) }));
}

/** The same bytes in two Blobs, read in chunks. */
async function sameBytes(a: Blob, b: Blob): Promise<boolean> {
  if (a.size !== b.size) return false;
  const chunk = 16 << 20;
  for (let at = 0; at < a.size; at += chunk) {
    const [x, y] = await Promise.all([a.slice(at, at + chunk).arrayBuffer(), b.slice(at, at + chunk).arrayBuffer()]);
    const u = new Uint8Array(x);
    const v = new Uint8Array(y);
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  }
  return true;
}

/**
 * Whether two picked folders hold the same files but the UNet (as `deltac convert` writes
 * them): then the converted pipeline shares the original's text encoding and decoder.
 */
export async function samePartsPicked(a: PageFiles, b: PageFiles): Promise<boolean> {
  const parts = (f: PageFiles) => [...f.files.keys()].filter((p) => p.includes('/') && !p.startsWith('unet/')).sort();
  const pa = parts(a);
  if (pa.join('\n') !== parts(b).join('\n')) return false;
  for (const p of pa) {
    const x = a.source(p);
    const y = b.source(p);
    if (typeof x === 'string' || typeof y === 'string' || !(await sameBytes(x, y))) return false;
  }
  return true;
}
