/**
 * What `deltac inspect <pipeline-dir>` shows: the pipeline class, every component
 * (its class in model_index.json, files, bytes; for ONNX models their inputs with
 * element types), whether the UNet is already converted (deltac's provenance in its
 * metadata), the scheduler, the tokenizer format(s), the VAE's factors and the
 * generation.json defaults.
 */
import { formatType } from '../../ir/types.js';
import { loadModelWithReport } from '../../onnx/load.js';
import { readProvenance } from '../../passes/delta-conv/provenance.js';
import { type PipelineKind, type TokenizerFormat, type VaeConfig, readJsonObject, readPipelineLayout, readVaeConfig, tokenizerFormat } from '../layout.js';
import { parseSchedulerConfig } from '../schedulers/index.js';
import { openPipelineFolder } from './folder.js';
import { SCHEDULER_CONFIG } from '../pipeline-folder.js';

export interface ModelDescription {
  file: string;
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
  /** External-data files the model references (relative to its folder). */
  externalData: string[];
  missingExternalData: string[];
}

export interface ComponentDescription {
  name: string;
  library?: string;
  className?: string;
  files: { path: string; bytes: number }[];
  bytes: number;
  model?: ModelDescription;
  tokenizer?: { format: TokenizerFormat | null; modelMaxLength?: number; padToken?: string };
}

export interface PipelineDescription {
  folder: string;
  className: string;
  /** Null: deltac converts its UNet but cannot preview it. */
  kind: PipelineKind | null;
  components: ComponentDescription[];
  topFiles: { path: string; bytes: number }[];
  bytes: number;
  unet: {
    converted: boolean;
    /** The converted layers, from deltac's provenance. */
    layers?: { modulePath: string; kernel: number; scales: number[]; gate: string }[];
  };
  scheduler?: { className?: string; config: Record<string, unknown> };
  vae: VaeConfig;
  generation?: Record<string, unknown>;
  warnings: { code: string; message: string }[];
}

function describeModel(file: string, absolute: string, warnings: PipelineDescription['warnings']): ModelDescription & { provenance: ReturnType<typeof readProvenance> } {
  const { model, diagnostics: found } = loadModelWithReport(absolute, { missingExternalData: 'warn' });
  for (const d of found) {
    if (d.severity === 'warning' && d.code !== 'DELTAC_W_EXTERNAL_MISSING') warnings.push({ code: d.code, message: `${file}: ${d.where ? `${d.where}: ` : ''}${d.message}` });
  }
  const externalData = new Set<string>();
  for (const v of model.graph.initializers.values()) {
    const s = v.initializer?.storage;
    if (s?.kind === 'external') externalData.add(s.location);
  }
  return {
    file,
    inputs: model.graph.inputs.filter((v) => !v.isInitializer).map((v) => ({ name: v.name, type: formatType(v.type) })),
    outputs: model.graph.outputs.map((v) => ({ name: v.name, type: formatType(v.type) })),
    externalData: [...externalData],
    missingExternalData: found.filter((d) => d.code === 'DELTAC_W_EXTERNAL_MISSING').map((d) => d.message),
    provenance: readProvenance(model),
  };
}

export async function describePipelineFolder(dir: string): Promise<PipelineDescription> {
  const files = openPipelineFolder(dir);
  const layout = await readPipelineLayout(files);
  const warnings: PipelineDescription['warnings'] = [];
  let unet: PipelineDescription['unet'] = { converted: false };
  const components: ComponentDescription[] = [];
  for (const c of layout.components) {
    const { model: _file, ...listed } = c;
    const d: ComponentDescription = { ...listed, bytes: c.files.reduce((a, f) => a + f.bytes, 0) };
    if (c.model) {
      const { provenance, ...model } = describeModel(c.model, files.absolute(c.model), warnings);
      d.model = model;
      if (c.name === 'unet') {
        unet = provenance
          ? { converted: true, layers: provenance.map((l) => ({ modulePath: l.modulePath, kernel: l.kernel, scales: l.scales, gate: l.gate })) }
          : { converted: false };
      }
    }
    if (c.name.startsWith('tokenizer')) {
      const config = (await readJsonObject(files, `${c.name}/tokenizer_config.json`)) ?? {};
      d.tokenizer = {
        format: tokenizerFormat(files, c.name),
        ...(typeof config.model_max_length === 'number' ? { modelMaxLength: config.model_max_length } : {}),
        ...(typeof config.pad_token === 'string' ? { padToken: config.pad_token } : {}),
      };
    }
    components.push(d);
  }
  const schedulerConfig = files.files.has(SCHEDULER_CONFIG) ? (parseSchedulerConfig(await files.readText(SCHEDULER_CONFIG), SCHEDULER_CONFIG) as Record<string, unknown>) : undefined;
  const generation = await readJsonObject(files, 'generation.json');
  return {
    folder: dir,
    className: layout.className,
    kind: layout.kind,
    components,
    topFiles: layout.topFiles,
    bytes: [...files.files.values()].reduce((a, b) => a + b, 0),
    unet,
    ...(schedulerConfig
      ? { scheduler: { ...(typeof schedulerConfig._class_name === 'string' ? { className: schedulerConfig._class_name } : {}), config: schedulerConfig } }
      : {}),
    vae: await readVaeConfig(files),
    ...(generation ? { generation } : {}),
    warnings,
  };
}
