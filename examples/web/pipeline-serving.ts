/**
 * The pipeline folder(s) `npm run web -- --pipeline DIR` serves to the preview page
 * (preview.html), read-only:
 *
 *   --pipeline DIR                  the pipeline folder (model_index.json, unet/, …)
 *   --weights ckpt.safetensors      converted here with `deltac convert DIR --weights ckpt` into
 *                                   examples/out/web/pipelines/<name>.<hash>.delta/ (again only
 *                                   when the folder, the checkpoint or deltac changed)
 *   --compare CONVERTED_DIR         or a folder `deltac convert` already wrote
 *
 * What is served is fixed when the server starts: the regular files under each folder
 * whose real path (links resolved) lies inside the folder's real path. A link that
 * leads out of the folder is not served (and named in the log), nor is anything the
 * listing did not hold; a URL maps to a file only by an exact match of its path in
 * that listing, and the file's real path is checked again when it is read.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeltacError } from '../../src/ir/errors.js';
import { loadModel } from '../../src/onnx/load.js';
import { readProvenance } from '../../src/passes/delta-conv/provenance.js';
import { MODEL_INDEX, UNET_MODEL, readPipelineLayout } from '../../src/pipeline/layout.js';
import { convertPipelineFolder } from '../../src/pipeline/node/convert-folder.js';
import { openPipelineFolder } from '../../src/pipeline/node/folder.js';
import { sameNonUnetFiles } from '../../src/pipeline/node/preview-folder.js';
import { openPipelineDir } from '../../src/pipeline/node/open-pipeline.js';
import { isInside } from '../../src/pipeline/node/output-folder.js';
import { WEB_OUT, upToDate } from './build.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Which folder a URL names: /pipeline/main/… (the given one), /pipeline/compare/… (the converted one). */
export type FolderSlot = 'main' | 'compare';

export interface ServedFolder {
  slot: FolderSlot;
  /** 'original' / 'delta': what its UNet is (a lone folder: 'delta' when its UNet carries deltac's provenance). */
  role: 'original' | 'delta';
  /** The folder as given (for the page and the log). */
  label: string;
  /** Its real path. */
  root: string;
  /** Served files: relative path ('/'-separated) → bytes. */
  files: Map<string, number>;
  /** Files under the folder that are not served, and why. */
  refused: string[];
}

export interface PipelineRequest {
  pipeline: string;
  weights?: string;
  compare?: string;
}

export interface ServedPipelines {
  folders: ServedFolder[];
  /** The checkpoint the converted folder was made with (--weights). */
  weights?: string;
  /** The two folders' files other than the UNet are the same bytes (the page then encodes the prompt and decodes with one set of models). */
  sameParts: boolean;
}

/** What the page reads at /pipeline/index.json. */
export function pipelineIndex(p: ServedPipelines) {
  return {
    folders: p.folders.map((f) => ({ slot: f.slot, role: f.role, label: path.basename(f.label), files: Object.fromEntries(f.files) })),
    ...(p.weights ? { weights: path.basename(p.weights) } : {}),
    sameParts: p.sameParts,
  };
}

/** The files of `dir` that may be served: regular files whose real path lies inside the folder's. */
export function listServedFolder(dir: string, slot: FolderSlot, role: ServedFolder['role']): ServedFolder {
  const listing = openPipelineFolder(dir); // refuses a missing folder, a file, a pipe or a device inside
  const root = fs.realpathSync(listing.root);
  const files = new Map<string, number>();
  const refused: string[] = [];
  for (const [rel, bytes] of listing.files) {
    const real = fs.realpathSync(listing.absolute(rel));
    if (isInside(real, root)) files.set(rel, bytes);
    else refused.push(`${rel} (a link to ${real}, outside the folder)`);
  }
  return { slot, role, label: dir, root, files, refused };
}

/** The file a request for `rel` in `folder` reads, or null: listed, and still a regular file inside the folder. */
export function servedFile(folder: ServedFolder, rel: string): string | null {
  if (!folder.files.has(rel)) return null;
  try {
    const real = fs.realpathSync(path.join(folder.root, ...rel.split('/')));
    return isInside(real, folder.root) && fs.statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
}

/** Where `--weights` conversions of `dir` go (one folder per pipeline and checkpoint). */
export function convertedFolderFor(dir: string, weights: string): string {
  const key = createHash('sha256').update(`${fs.realpathSync(dir)}\0${fs.realpathSync(weights)}`).digest('hex').slice(0, 10);
  return path.join(WEB_OUT, 'pipelines', `${path.basename(path.resolve(dir))}.${key}.delta`);
}

/** Lists a folder to serve, refusing one whose model_index.json or UNet would not be served (a link out of it). */
function servable(dir: string, slot: FolderSlot, role: ServedFolder['role'], log: (line: string) => void): ServedFolder {
  const f = listServedFolder(dir, slot, role);
  for (const r of f.refused) log(`not served: ${f.label}/${r}`);
  const lost = [MODEL_INDEX, UNET_MODEL].filter((p) => !f.files.has(p));
  if (lost.length) {
    throw new DeltacError(
      'DELTAC_E_PIPELINE_FOLDER',
      `"${f.label}": ${lost.join(' and ')} ${lost.length > 1 ? 'are links' : 'is a link'} out of the folder, which the server does not serve; copy the folder with its links resolved (cp -rL) or pick it in the page`,
    );
  }
  return f;
}

/** Reads (and with --weights, converts) the folders to serve. */
export async function preparePipelines(request: PipelineRequest, log: (line: string) => void = () => {}): Promise<ServedPipelines> {
  if (request.weights && request.compare) throw new DeltacError('DELTAC_E_BAD_OPTION', '--weights and --compare both give the converted UNet: use one');
  await readPipelineLayout(openPipelineFolder(request.pipeline)); // a folder without model_index.json or unet/model.onnx: DELTAC_E_PIPELINE_FOLDER
  const unet = path.join(request.pipeline, ...UNET_MODEL.split('/'));
  const alone = !request.weights && !request.compare;
  const main = servable(request.pipeline, 'main', alone && readProvenance(loadModel(unet)) ? 'delta' : 'original', log);
  let compare = request.compare;
  if (request.weights) {
    if (!fs.existsSync(request.weights)) throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `--weights "${request.weights}" does not exist`);
    compare = convertedFolderFor(request.pipeline, request.weights);
    const sources = [request.pipeline, request.weights, path.join(REPO, 'src'), fileURLToPath(import.meta.url)];
    if (!upToDate(path.join(compare, UNET_MODEL), sources)) {
      log(`converting ${request.pipeline} with ${request.weights} → ${path.relative(process.cwd(), compare)} (deltac convert)`);
      const r = await convertPipelineFolder(request.pipeline, { weights: request.weights, output: compare, force: true });
      const converted = r.report.layers.filter((l) => l.status === 'converted').length;
      log(`converted ${converted} self-attention layer(s); ${r.carried.length} other file(s) carried over; smoke check ${r.check.status}`);
    }
  }
  const folders = [main, ...(compare ? [servable(compare, 'compare', 'delta', log)] : [])];
  const sameParts = folders.length === 2 && sameNonUnetFiles(await openPipelineDir(folders[0]!.label), await openPipelineDir(folders[1]!.label));
  return { folders, ...(request.weights ? { weights: request.weights } : {}), sameParts };
}
