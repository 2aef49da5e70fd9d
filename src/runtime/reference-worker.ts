/**
 * The per-layer check's reference ΔConvBlock in a worker thread (reference-pool.ts):
 * each message is one layer's weights and inputs, answered with the reference's
 * outputs, so that the check's main thread reads and runs the next layer meanwhile.
 */
import { parentPort } from 'node:worker_threads';
import { type ReferenceJob, computeReferences } from './reference-pool.js';

parentPort!.on('message', (job: ReferenceJob & { id: number }) => {
  try {
    const outputs = computeReferences(job);
    parentPort!.postMessage({ id: job.id, outputs }, outputs.map((o) => o.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) });
  }
});
