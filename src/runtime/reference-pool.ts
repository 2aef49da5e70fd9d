/**
 * Where the per-layer check computes its reference ΔConvBlocks: in a worker thread
 * when one starts (the conv_up and conv_out products are most of the check's CPU time,
 * and the main thread meanwhile reads the next layer's weights and runs it in
 * onnxruntime), else on the calling thread. Either way the same code
 * (computeReferences) gives the same bits.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type DeltaConvBlockParams, type DeltaConvBlockWeights, deltaConvBlockReference, deltaConvBlockReferenceAt } from '../reference/delta-conv-block.js';
import type { Extent, TokenWindow } from '../reference/pyramid-conv.js';

/** One layer: its weights, and the tokens of each size it ran at. */
export interface ReferenceJob {
  weights: DeltaConvBlockWeights;
  params: DeltaConvBlockParams;
  runs: { x: Float32Array; size: Extent; window?: TokenWindow }[];
}

export function computeReferences(job: ReferenceJob): Float32Array[] {
  return job.runs.map((r) => (r.window ? deltaConvBlockReferenceAt(r.x, job.weights, r.size, job.params, r.window) : deltaConvBlockReference(r.x, job.weights, r.size, job.params)));
}

export interface ReferencePool {
  /** Where the references are computed now ('inline' also after a worker failed). */
  readonly where: 'worker' | 'inline';
  compute(job: ReferenceJob): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** A worker thread if one starts here (DELTAC_CHECK_THREADS=0 keeps it on the calling thread). */
export function referencePool(): ReferencePool {
  if (process.env.DELTAC_CHECK_THREADS === '0') return inline();
  try {
    return workerPool(startWorker());
  } catch {
    return inline();
  }
}

function inline(): ReferencePool {
  return { where: 'inline', compute: async (job) => computeReferences(job), close: async () => {} };
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
  const waiting = new Map<number, { resolve: (o: Float32Array[]) => void; reject: (e: Error) => void; job: ReferenceJob }>();
  // A worker that cannot start or dies: its jobs are computed here instead.
  const fallBack = (e: Error) => {
    failed ??= e;
    for (const [id, w] of waiting) {
      waiting.delete(id);
      try {
        w.resolve(computeReferences(w.job));
      } catch (err) {
        w.reject(err as Error);
      }
    }
  };
  worker.on('message', (m: { id: number; outputs?: Float32Array[]; error?: string }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    if (m.outputs) w.resolve(m.outputs);
    else w.reject(new Error(m.error));
  });
  worker.on('error', fallBack);
  worker.on('exit', () => fallBack(new Error('the reference worker exited')));
  worker.unref();
  return {
    get where() {
      return failed ? 'inline' : 'worker';
    },
    compute(job) {
      if (failed) return Promise.resolve(computeReferences(job));
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject, job });
        worker.ref(); // (unreferenced while idle: a forgotten close() never holds the process)
        // (copied, not transferred: the weights may be views into buffers the caller keeps)
        worker.postMessage({ id, ...job });
      });
    },
    async close() {
      failed ??= new Error('closed');
      await worker.terminate();
    },
  };
}
