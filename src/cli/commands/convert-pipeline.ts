/** `deltac convert <pipeline-dir> --weights ckpt -o <out-dir>`: the folder form of `convert` (src/pipeline/node/convert-folder.ts). */
import path from 'node:path';
import { DeltacError } from '../../ir/errors.js';
import { type ConvertFolderResult, convertPipelineFolder } from '../../pipeline/node/convert-folder.js';
import { formatBytes, type Io, parseGate, parseList, progressBar } from '../output.js';
import { type KernelsSummary, loadKernelEmitter } from './kernels.js';
import { parseCheck, renderReport } from './convert.js';

/** `<dir>.delta` beside the input folder. */
export function defaultPipelineOutput(input: string): string {
  return `${path.resolve(input).replace(/[\\/]+$/, '')}.delta`;
}

export async function convertPipelineCommand(input: string, values: Record<string, unknown>, io: Io): Promise<void> {
  const weights = values.weights as string;
  if (values['reuse-weights']) throw new DeltacError('DELTAC_E_BAD_OPTION', '--reuse-weights cannot be used with a pipeline folder: the output folder holds its own UNet weights');
  const emit = (values.emit as string | undefined) ?? 'standard';
  if (emit !== 'standard' && emit !== 'fused') throw new DeltacError('DELTAC_E_BAD_OPTION', `--emit must be standard or fused, got "${emit}"`);
  const ext = (values['external-data'] as string | undefined) ?? 'auto';
  if (!['auto', 'always', 'never'].includes(ext)) throw new DeltacError('DELTAC_E_BAD_OPTION', `--external-data must be auto, always or never`);
  const check = parseCheck(values);
  const output = (values.output as string | undefined) ?? defaultPipelineOutput(input);
  const kernelsDir = values['emit-kernels'] as string | undefined;
  const emitKernels = kernelsDir ? await loadKernelEmitter() : undefined;
  let kernels: KernelsSummary | undefined;
  const started = performance.now();
  const bar = progressBar(io, 'writing');
  let result: ConvertFolderResult;
  try {
    result = await convertPipelineFolder(input, {
      output,
      weights,
      gate: parseGate(values.gate),
      scales: parseList(values.scales as string | undefined, '--scales'),
      map: values.map as string | undefined,
      allowPartial: values['allow-partial'] === true,
      emit,
      resolutions: parseList(values.resolution as string | undefined, '--resolution'),
      onFused: emitKernels ? (fused) => (kernels = emitKernels(fused, kernelsDir!)) : undefined,
      externalData: ext === 'always' ? true : ext === 'never' ? false : 'auto',
      check,
      keepFailed: values['keep-failed'] === true,
      force: values.force === true,
      onProgress: (done, total, what) => bar.update(done, total, what),
    });
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  if (values.json) {
    const { layout, ...rest } = result;
    io.out(JSON.stringify({ ...rest, pipeline: layout.className, kernels, seconds }, null, 2));
  } else {
    io.out(renderReport(path.join(input, 'unet', 'model.onnx'), result.report, result.unet, seconds, result.check));
    io.out(renderCarried(result));
    if (kernels) io.out(kernels.summary);
  }
  for (const d of result.report.diagnostics) if (d.severity !== 'note') io.err(`${d.severity}: ${d.message}`);
}

function renderCarried(r: ConvertFolderResult): string {
  const links = r.carried.filter((c) => c.how === 'hard link');
  const copies = r.carried.filter((c) => c.how === 'copy');
  const bytes = (cs: typeof r.carried) => formatBytes(cs.reduce((a, c) => a + c.bytes, 0));
  const parts = [links.length ? `${links.length} hard-linked (${bytes(links)})` : '', copies.length ? `${copies.length} copied (${bytes(copies)})` : ''].filter(Boolean);
  return [
    `pipeline         ${r.layout.className}: ${r.carried.length} other files carried over unchanged${parts.length ? `, ${parts.join(', ')}` : ''}`,
    `folder           ${r.output}`,
  ].join('\n');
}
