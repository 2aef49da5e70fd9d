/**
 * Where the per-layer check computes its reference ΔConvBlocks and compares the saved
 * weights with the checkpoint's: in a worker thread when one starts (the main thread
 * meanwhile reads the next layer's weights and runs it in onnxruntime), else on the
 * calling thread. Either way the same code (computeJob) gives the same bits.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DeltacError, type ErrorCode } from '../ir/errors.js';
import { type DeltaConvBlockParams, type DeltaConvBlockWeights, deltaConvBlockReference, deltaConvBlockReferenceAt } from '../reference/delta-conv-block.js';
import type { Extent, TokenWindow } from '../reference/pyramid-conv.js';
import { type BlockConstants, type BlockShape, unpackConstants } from '../reference/block-weights.js';
import { type WeightComparison, type WeightDiff, compareWeights, firstNonFinite } from './weight-compare.js';

/**
 * One layer: its weights (or its constants as the model holds them, unpacked where the
 * job runs: block-weights.ts), the tokens of each size it ran at, and what to compare the
 * weights with.
 */
export interface ReferenceJob {
  weights: DeltaConvBlockWeights | { constants: BlockConstants; shape: BlockShape; layer: string };
  params: DeltaConvBlockParams;
  runs: { x: Float32Array; size: Extent; window?: TokenWindow }[];
  compare?: WeightComparison;
}

export interface ReferenceResult {
  /** The reference's output for each run (none when a weight is not finite). */
  outputs: Float32Array[];
  /** The weights against the checkpoint's, when the job asked. */
  weightDiff?: WeightDiff;
  /** Without a checkpoint to compare with: the first weight that is NaN or ±Inf. */
  nonFiniteWeight?: string;
}

export function computeJob(job: ReferenceJob): ReferenceResult {
  const w = job.weights;
  const { weights, raw } = 'constants' in w ? unpackConstants(w.constants, w.shape, w.layer) : { weights: w, raw: {} };
  const weightDiff = job.compare ? compareWeights(weights, job.compare, raw) : undefined;
  // (with a checkpoint, a NaN or ±Inf in the saved weights is a difference from it)
  const nonFiniteWeight = job.compare ? null : firstNonFinite(weights);
  if (nonFiniteWeight) return { outputs: [], nonFiniteWeight };
  const outputs = job.runs.map((r) => (r.window ? deltaConvBlockReferenceAt(r.x, weights, r.size, job.params, r.window) : deltaConvBlockReference(r.x, weights, r.size, job.params)));
  return { outputs, ...(weightDiff ? { weightDiff } : {}) };
}

/** An error as a worker posts it: a DeltacError keeps its code and details. */
export interface PostedError {
  message: string;
  code?: ErrorCode;
  details?: Record<string, unknown>;
}

export function postedError(e: unknown): PostedError {
  if (e instanceof DeltacError) return { message: e.message, code: e.code, details: e.details };
  return { message: e instanceof Error ? e.message : String(e) };
}

function fromPosted(e: PostedError): Error {
  return e.code ? new DeltacError(e.code, e.message, e.details) : new Error(e.message);
}

export interface ReferencePool {
  /** Where the references are computed now ('inline' also after a worker failed). */
  readonly where: 'worker' | 'inline';
  /**
   * `transfer`: buffers of the job handed to the worker rather than copied (the caller no
   * longer uses them; a worker that dies with them leaves the job failed, not recomputed).
   */
  compute(job: ReferenceJob, transfer?: ArrayBuffer[]): Promise<ReferenceResult>;
  close(): Promise<void>;
}

/**
 * A worker thread if one starts here (DELTAC_CHECK_THREADS=0, or `inlineOnly`, keeps it
 * on the calling thread: jobs whose comparison holds a Checkpoint object, not a path).
 */
export function referencePool(inlineOnly = false): ReferencePool {
  if (inlineOnly || process.env.DELTAC_CHECK_THREADS === '0') return inline();
  try {
    return workerPool(startWorker());
  } catch {
    return inline();
  }
}

function inline(): ReferencePool {
  return { where: 'inline', compute: async (job) => computeJob(job), close: async () => {} };
}

/**
 * The worker's entry beside this file: reference-worker.js as built, or the .ts source
 * under tsx or vitest, which the worker then loads through tsx's loader (a dev
 * dependency, there wherever the sources run).
 */
function startWorker(): Worker {
  const here = fileURLToPath(import.meta.url);
  const ext = here.endsWith('.ts') ? '.ts' : '.js';
  const entry = pathToFileURL(here.replace(/reference-pool\.[jt]s$/, `reference-worker${ext}`));
  if (!fs.existsSync(entry)) throw new Error(`no ${entry.pathname}`);
  if (ext === '.js') return new Worker(entry);
  const tsx = tsxLoader(here);
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, { eval: true });
}

/** tsx's ESM register API as a file URL, found from its package.json. */
function tsxLoader(from: string): string {
  const pkgPath = createRequire(from).resolve('tsx/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8')) as { exports: Record<string, { import?: string | { default?: string } }> };
  const target = pkg.exports['./esm/api']?.import;
  const file = typeof target === 'string' ? target : target?.default;
  if (!file) throw new Error("tsx has no './esm/api' export");
  return pathToFileURL(fileURLToPath(new URL(file, pathToFileURL(pkgPath)))).href;
}

function workerPool(worker: Worker): ReferencePool {
  let next = 0;
  let failed: Error | null = null;
  const waiting = new Map<number, { resolve: (r: ReferenceResult) => void; reject: (e: Error) => void; job: ReferenceJob; transferred: boolean }>();
  // A worker that cannot start or dies: its jobs are computed here instead (but those whose buffers went with it).
  const fallBack = (e: Error) => {
    failed ??= e;
    for (const [id, w] of waiting) {
      waiting.delete(id);
      if (w.transferred) {
        w.reject(new Error(`the reference worker stopped with a job's buffers: ${e.message}`));
        continue;
      }
      try {
        w.resolve(computeJob(w.job));
      } catch (err) {
        w.reject(err as Error);
      }
    }
  };
  worker.on('message', (m: { id: number; result?: ReferenceResult; error?: PostedError }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    if (m.result) w.resolve(m.result);
    else w.reject(fromPosted(m.error!));
  });
  worker.on('error', fallBack);
  worker.on('exit', () => fallBack(new Error('the reference worker exited')));
  worker.unref();
  return {
    get where() {
      return failed ? 'inline' : 'worker';
    },
    compute(job, transfer = []) {
      if (failed) return Promise.resolve(computeJob(job));
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject, job, transferred: transfer.length > 0 });
        worker.ref(); // (unreferenced while idle: a forgotten close() never holds the process)
        worker.postMessage({ id, ...job }, transfer);
      });
    },
    async close() {
      failed ??= new Error('closed');
      await worker.terminate();
    },
  };
}
