/**
 * The check of a saved conversion, as `deltac convert` runs it after writing:
 *
 *   'layers' (the default)  every converted layer on its own against the reference
 *                           ΔConvBlock, and the nodes outside them against the original
 *                           (layer-check.ts): seconds, memory of one layer's weights;
 *   'full'                  that, and then the original and the converted model once
 *                           each in onnxruntime (smoke-check.ts), when twice the weights
 *                           fit in the memory available.
 *
 * On failure the output is deleted, or kept as `<name>.failed.onnx` with `keepFailed`
 * (its external data stays where it is, which the renamed model still references; never
 * over the input model, which an input named `<name>.failed.onnx` would be: then it is
 * deleted too), and the DELTAC_E_CHECK_FAILED message says which.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeltacError, isDeltacError } from '../ir/errors.js';
import type { Model } from '../ir/model.js';
import { loadModel } from '../onnx/load.js';
import { type SaveResult, sameFile } from '../onnx/save.js';
import { type LayerCheckOptions, type LayerCheckResult, checkLayers } from './layer-check.js';
import type { GraphSnapshot } from './outside-nodes.js';
import { type SmokeCheckOptions, type SmokeCheckResult, memoryReason, skippedCheck, smokeCheck } from './smoke-check.js';

export type CheckMode = 'layers' | 'full';

export interface ConversionCheckOptions extends LayerCheckOptions, SmokeCheckOptions {
  /** 'layers' (default) or 'full' (the layers, then the whole model once). */
  check?: CheckMode;
  /** Keep a failed output as `<name>.failed.onnx` instead of deleting it. */
  keepFailed?: boolean;
  /** The original model as it was before the conversion (`snapshotGraph`); read from `original` when absent. */
  before?: GraphSnapshot;
  /** Bytes of memory available to the whole-model run (default: free memory now). */
  availableMemory?: number;
  /**
   * The per-layer check's outcome when it already ran on the model as it was being
   * saved (`deltac convert` runs it while the data file is written: saveModelAsync's
   * whilePlanned); a DELTAC_E_CHECK_FAILED error is handled as if it were thrown here.
   */
  layers?: { result: LayerCheckResult } | { error: unknown };
}

export interface ConversionCheck {
  mode: CheckMode | 'none';
  status: 'passed' | 'skipped';
  /** Why nothing was checked (`--no-check`). */
  reason?: string;
  layers?: LayerCheckResult;
  /** The whole-model run (`full`): passed, or skipped with the reason (it would not fit in memory, an operator without a CPU kernel …). */
  full?: SmokeCheckResult;
  /** Wall time of the whole check. */
  ms: number;
}

/** No check at all, and why. */
export function noCheck(reason: string): ConversionCheck {
  return { mode: 'none', status: 'skipped', reason, ms: 0 };
}

/**
 * Checks the saved conversion `converted` (a model file) of the model file `original`.
 * Throws DELTAC_E_CHECK_FAILED saying which check failed ("layer check: …", "smoke
 * check: …"); the files are left as they are.
 */
export async function checkConversion(original: string, converted: string, options: ConversionCheckOptions = {}): Promise<ConversionCheck> {
  const started = performance.now();
  const mode = options.check ?? 'layers';
  let stage = 'layer check';
  try {
    let layers: LayerCheckResult;
    // (the saved model's protobuf is decoded once, for both checks: they only read it)
    let saved: Model | undefined;
    const model = () => (saved ??= loadModel(converted));
    if (options.layers && 'error' in options.layers) throw options.layers.error;
    else layers = options.layers ? options.layers.result : await checkLayers(options.before ?? original, model(), options);
    let full: SmokeCheckResult | undefined;
    if (mode === 'full') {
      stage = 'smoke check';
      const tooBig = memoryReason(model(), options.availableMemory);
      full = tooBig ? skippedCheck(`${tooBig}; the per-layer check needs only the ΔConvBlock weights`) : await smokeCheck(original, converted, model(), options);
    }
    return { mode, status: 'passed', layers, ...(full ? { full } : {}), ms: performance.now() - started };
  } catch (e) {
    if (!isDeltacError(e) || e.code !== 'DELTAC_E_CHECK_FAILED') throw e;
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `${stage}: ${e.message}`, e.details);
  }
}

/**
 * Checks the conversion `saved` (what saveModel returned) of the model file
 * `original` (checkConversion). Throws DELTAC_E_CHECK_FAILED after deleting (or
 * keeping) the output.
 */
export async function checkSavedModel(original: string, saved: SaveResult, options: ConversionCheckOptions = {}): Promise<ConversionCheck> {
  const { modelPath, externalDataPath } = saved;
  try {
    return await checkConversion(original, modelPath, options);
  } catch (e) {
    if (!isDeltacError(e) || e.code !== 'DELTAC_E_CHECK_FAILED') throw e;
    const kept = failedPath(modelPath);
    // The failed model never takes the input's place (an input named <name>.failed.onnx).
    const keep = options.keepFailed === true && !sameFile(kept, original);
    let fate: string;
    if (keep) {
      fs.renameSync(modelPath, kept);
      fate = `the output was kept as ${kept}${externalDataPath ? ` (its weights stay in ${path.basename(externalDataPath)})` : ''}`;
    } else {
      fs.rmSync(modelPath, { force: true });
      if (externalDataPath) fs.rmSync(externalDataPath, { force: true });
      fate = `the output was deleted (--keep-failed ${options.keepFailed ? 'would have replaced the input model' : 'keeps it as'} ${path.basename(kept)})`;
    }
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `${e.message}; ${fate}`, { ...e.details, kept: keep });
  }
}

export function failedPath(modelPath: string): string {
  return modelPath.replace(/(\.onnx)?$/i, '.failed.onnx');
}
