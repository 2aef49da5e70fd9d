/**
 * The per-layer check's reference ΔConvBlock and weight comparison in a worker thread
 * (reference-pool.ts): each message is one layer's weights and inputs, answered with
 * the reference's outputs and the weights' difference from the checkpoint, so that the
 * check's main thread reads and runs the next layer meanwhile.
 */
import { parentPort } from 'node:worker_threads';
import { type ReferenceJob, computeJob, postedError } from './reference-pool.js';

parentPort!.on('message', (job: ReferenceJob & { id: number }) => {
  try {
    const result = computeJob(job);
    parentPort!.postMessage({ id: job.id, result }, result.outputs.map((o) => o.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: postedError(e) });
  }
});
