/** `deltac inspect <pipeline-dir>`: the components of a pipeline folder (src/pipeline/node/describe-folder.ts). */
import { type PipelineDescription, describePipelineFolder } from '../../pipeline/node/describe-folder.js';
import { SUPPORTED_PIPELINES } from '../../pipeline/layout.js';
import { formatBytes, type Io, table } from '../output.js';

export async function inspectPipelineCommand(dir: string, values: Record<string, unknown>, io: Io): Promise<void> {
  const d = await describePipelineFolder(dir);
  io.out(values.json ? JSON.stringify(d, null, 2) : renderPipeline(d));
}

function renderPipeline(d: PipelineDescription): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(Math.max(14, ...d.components.map((c) => c.name.length + 1)))} ${text}`);
  row('pipeline', d.folder);
  row('class', `${d.className} — ${d.kind ? `deltac converts and previews it (${d.kind})` : `deltac converts its UNet; preview runs only ${Object.keys(SUPPORTED_PIPELINES).join(', ')}`}`);
  row('size', `${formatBytes(d.bytes)} in ${d.components.reduce((a, c) => a + c.files.length, 0) + d.topFiles.length} files`);
  lines.push('');
  lines.push(
    table(
      ['component', 'class', 'files', 'size'],
      d.components.map((c) => [c.name, [c.library, c.className].filter(Boolean).join(' ') || '-', c.files.map((f) => f.path.slice(c.name.length + 1)).join(', ') || '(missing)', formatBytes(c.bytes)]),
      ['l', 'l', 'l', 'r'],
    ),
  );
  const unet = d.components.find((c) => c.name === 'unet');
  if (unet?.model) {
    lines.push('');
    row('unet inputs', unet.model.inputs.map((i) => `${i.name} ${i.type}`).join(', '));
    row(
      'unet',
      `${
        d.unet.converted
          ? `converted by deltac: ${d.unet.layers!.length} ΔConvBlocks (K ${[...new Set(d.unet.layers!.map((l) => l.kernel))].join('/')}, scales ${[...new Set(d.unet.layers!.map((l) => l.scales.join(',')))].join(' | ')}, gate ${[...new Set(d.unet.layers!.map((l) => l.gate))].join('/')})`
          : 'not converted (no deltac provenance in its metadata)'
      }${unet.model.externalData.length ? `; external data ${unet.model.externalData.join(', ')}` : ''}`,
    );
  }
  for (const c of d.components) {
    if (c.model && c.name !== 'unet') row(`${c.name}`, `inputs ${c.model.inputs.map((i) => `${i.name} ${i.type}`).join(', ')}`);
  }
  for (const c of d.components) {
    if (!c.tokenizer) continue;
    const t = c.tokenizer;
    row(c.name, `${t.format ?? 'neither tokenizer.json nor vocab.json + merges.txt'}${t.modelMaxLength ? `, ${t.modelMaxLength} tokens` : ''}${t.padToken ? `, padding "${t.padToken}"` : ''}`);
  }
  if (d.scheduler) {
    const c = d.scheduler.config;
    const opts = ['prediction_type', 'timestep_spacing', 'steps_offset', 'beta_schedule', 'use_karras_sigmas', 'algorithm_type', 'solver_order']
      .filter((k) => c[k] !== undefined && c[k] !== null)
      .map((k) => `${k} ${JSON.stringify(c[k])}`);
    row('scheduler', `${d.scheduler.className ?? '?'}${opts.length ? ` (${opts.join(', ')})` : ''}`);
  }
  row('vae', `scaling_factor ${d.vae.scalingFactor}${d.vae.shiftFactor ? `, shift_factor ${d.vae.shiftFactor}` : ''}, ${d.vae.scaleFactor} px per latent (${d.vae.source})`);
  if (d.generation) {
    const g = d.generation;
    const parts = ['prompt', 'steps', 'num_inference_steps', 'guidance_scale', 'width', 'height', 'seed', 'latents'].filter((k) => g[k] !== undefined).map((k) => `${k} ${JSON.stringify(g[k])}`);
    row('generation', parts.join(', '));
  }
  if (d.topFiles.length) row('other files', d.topFiles.map((f) => f.path).join(', '));
  for (const w of d.warnings) row('warning', `${w.code}: ${w.message}`);
  return lines.join('\n');
}
