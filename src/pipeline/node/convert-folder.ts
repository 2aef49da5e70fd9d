/**
 * `deltac convert <pipeline-dir> --weights ckpt -o <out-dir>`: a drop-in pipeline folder
 * whose UNet is converted and whose every other file is the input's, byte for byte
 * (hard-linked where the file system allows, else copied), under the same names, so
 * that diffusers, optimum and the browser page load it unchanged.
 *
 * Atomic as a whole: everything is written into a temporary folder beside the output
 * (`.<name>.deltac-XXXXXX`), the converted UNet is checked there, and only then
 * is the folder renamed into place; on any failure it is removed. The output may not
 * be, or lie inside, the input folder (nor contain it). An existing output folder is
 * replaced only with `force`, and only when it is empty or itself a pipeline folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type ConversionReport, type ConvertOptions, convert } from '../../convert.js';
import { DeltacError, isDeltacError } from '../../ir/errors.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/load.js';
import { type SaveResult, saveModelAsync } from '../../onnx/save.js';
import { type CheckMode, type ConversionCheck, checkConversion, noCheck } from '../../runtime/conversion-check.js';
import { snapshotGraph } from '../../runtime/outside-nodes.js';
import { MODEL_INDEX, UNET_MODEL, readPipelineLayout, type PipelineLayout } from '../layout.js';
import { type FolderFiles, openPipelineFolder } from './folder.js';
import { commitFolder, makeTempFolder, refuseAroundInputs } from './output-folder.js';

export interface ConvertFolderOptions extends Omit<ConvertOptions, 'onPass'> {
  /** The folder to write. */
  output: string;
  /** Replace an existing output folder (only an empty one or a pipeline folder). */
  force?: boolean;
  /** Where the UNet's tensors go (default 'auto': external data when the input's UNet had it, under the same file name). */
  externalData?: boolean | 'auto';
  /** The check of the converted UNet (runtime/conversion-check.ts): 'layers' (default), 'full' (also the whole UNet once, when twice its weights fit in memory), 'never'. */
  check?: CheckMode | 'never';
  /** On a failed check, keep the written folder as `<output>.failed` instead of removing it. */
  keepFailed?: boolean;
  /** Bytes written so far (the UNet's weights, then the carried-over files). */
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface CarriedFile {
  path: string;
  bytes: number;
  how: 'hard link' | 'copy';
}

export interface ConvertFolderResult {
  input: string;
  output: string;
  layout: PipelineLayout;
  report: ConversionReport;
  unet: SaveResult;
  carried: CarriedFile[];
  check: ConversionCheck;
}

/** Refuses outputs that would write into, over or around the input; says whether an existing folder is replaced. */
function checkOutput(input: FolderFiles, output: string, force: boolean): { replaces: boolean } {
  refuseAroundInputs(output, [input.label]);
  let st: fs.Stats;
  try {
    st = fs.statSync(output);
  } catch {
    return { replaces: false };
  }
  if (!st.isDirectory()) throw new DeltacError('DELTAC_E_WRITE', `the output "${output}" exists and is not a folder; a pipeline is written as a folder`);
  const entries = fs.readdirSync(output);
  if (!entries.length) return { replaces: true };
  if (!force) throw new DeltacError('DELTAC_E_OUTPUT_EXISTS', `the output folder "${output}" exists and is not empty; choose another, or pass --force to replace it`);
  if (!entries.includes(MODEL_INDEX)) {
    throw new DeltacError('DELTAC_E_OUTPUT_EXISTS', `the output folder "${output}" is not a pipeline folder (no ${MODEL_INDEX}); --force replaces only a pipeline folder or an empty one`);
  }
  return { replaces: true };
}

/** The UNet's external-data files, relative to the pipeline folder. */
function externalFiles(model: Model): string[] {
  const files = new Set<string>();
  for (const v of model.graph.initializers.values()) {
    const s = v.initializer?.storage;
    if (s?.kind === 'external') files.add(s.location);
  }
  return [...files].map((f) => `unet/${f.split(path.sep).join('/')}`);
}

/** Hard link `src` (its real file) at `dst`, or copy it when linking is not possible (another device, permissions). */
function carry(src: string, dst: string): CarriedFile['how'] {
  const real = fs.realpathSync(src);
  try {
    fs.linkSync(real, dst);
    return 'hard link';
  } catch {
    fs.copyFileSync(real, dst, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    return 'copy';
  }
}

export async function convertPipelineFolder(inputDir: string, options: ConvertFolderOptions): Promise<ConvertFolderResult> {
  const input = openPipelineFolder(inputDir);
  const layout = await readPipelineLayout(input);
  const output = path.resolve(options.output);
  const { replaces } = checkOutput(input, options.output, options.force === true);

  const unetPath = input.absolute(UNET_MODEL);
  const model = loadModel(unetPath);
  const unetData = externalFiles(model);
  const check = options.check ?? 'layers';
  const before = check === 'never' ? undefined : snapshotGraph(model);
  const report = convert(model, options);

  const tmp = makeTempFolder(output);
  let keep = false;
  try {
    const carriedPaths = [...input.files].filter(([p]) => p !== UNET_MODEL && !unetData.includes(p));
    const total = carriedPaths.reduce((a, [, b]) => a + b, 0);
    fs.mkdirSync(path.join(tmp, 'unet'));
    const dataName = unetData.length === 1 && !unetData[0]!.slice('unet/'.length).includes('/') ? unetData[0]!.slice('unet/'.length) : undefined;
    const saved = await saveModelAsync(model, path.join(tmp, 'unet', 'model.onnx'), {
      externalData: options.externalData ?? 'auto',
      ...(dataName ? { externalDataName: dataName } : {}),
      onProgress: (done, all) => options.onProgress?.(done, all + total, 'unet/model.onnx'),
    });
    const unetBytes = saved.externalDataBytes;
    const carried: CarriedFile[] = [];
    let done = 0;
    for (const [rel, bytes] of carriedPaths) {
      const dst = path.join(tmp, ...rel.split('/'));
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      carried.push({ path: rel, bytes, how: carry(input.absolute(rel), dst) });
      done += bytes;
      options.onProgress?.(unetBytes + done, unetBytes + total, rel);
    }
    const checked =
      check === 'never' ? noCheck('--no-check') : await checkConversion(unetPath, path.join(tmp, 'unet', 'model.onnx'), { check, before, weights: options.weights });
    commitFolder(tmp, output, replaces);
    const moved = (p: string) => path.join(output, path.relative(tmp, p));
    return {
      input: inputDir,
      output,
      layout,
      report,
      unet: { ...saved, modelPath: moved(saved.modelPath), ...(saved.externalDataPath ? { externalDataPath: moved(saved.externalDataPath) } : {}) },
      carried,
      check: checked,
    };
  } catch (e) {
    if (isDeltacError(e) && e.code === 'DELTAC_E_CHECK_FAILED') {
      const failed = `${output}.failed`;
      keep = options.keepFailed === true && !fs.existsSync(failed);
      if (keep) fs.renameSync(tmp, failed);
      const fate = keep ? `the folder was kept as ${failed}` : `nothing was written${options.keepFailed ? ` (${failed} exists, so it was not kept)` : ' (--keep-failed keeps it as <output>.failed)'}`;
      throw new DeltacError('DELTAC_E_CHECK_FAILED', `the converted UNet's ${e.message}; ${fate}`, { ...e.details, kept: keep });
    }
    if (isDeltacError(e)) throw e;
    throw new DeltacError('DELTAC_E_WRITE', `could not write "${output}": ${(e as Error).message}`, undefined, { cause: e });
  } finally {
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  }
}
