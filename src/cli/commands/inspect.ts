/**
 * `deltac inspect model.onnx [--json]`: opsets, inputs/outputs, op histogram, weight bytes,
 * the model's local functions and the nodes that call them, and the warnings of loading
 * (declared types shape inference disagrees with, a newer IR version, missing external data).
 */
import path from 'node:path';
import type { Diagnostic } from '../../ir/diagnostics.js';
import { dtypeName } from '../../ir/dtype.js';
import { DeltacError } from '../../ir/errors.js';
import { calledFunction, functionLabel, indexFunctions } from '../../ir/function.js';
import type { Model } from '../../ir/model.js';
import { formatType } from '../../ir/types.js';
import { loadModelWithReport } from '../../onnx/load.js';
import type { Command } from '../main.js';
import { formatBytes, table } from '../output.js';
import { isDirectory } from '../../pipeline/node/folder.js';
import { inspectPipelineCommand } from './inspect-pipeline.js';

export interface ModelSummary {
  file: string;
  irVersion: number;
  producer: string;
  opsets: Record<string, number>;
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
  nodes: number;
  ops: Record<string, number>;
  initializers: {
    count: number;
    bytes: number;
    inline: { count: number; bytes: number };
    external: { count: number; bytes: number; files: number; missingFiles: string[] };
    dtypes: Record<string, number>;
  };
  /** Model-local functions, in file order, with the nodes of the main graph that call them. */
  functions: {
    domain: string;
    name: string;
    overload: string;
    inputs: string[];
    outputs: string[];
    attributes: string[];
    /** Nodes of the body (nested graphs included). */
    nodes: number;
    opsets: Record<string, number>;
    /** Names (or first output names) of the nodes that call it; `<function>/<node>` inside another function. */
    calledBy: string[];
  }[];
  /** Warnings found while loading (missing external files are listed under initializers instead). */
  warnings: { code: string; message: string; where?: string }[];
}

export function summarizeModel(model: Model, file: string, missing: string[], diagnostics: Diagnostic[] = []): ModelSummary {
  const ops: Record<string, number> = {};
  let nodes = 0;
  for (const n of model.graph.allNodes()) {
    ops[n.qualifiedType] = (ops[n.qualifiedType] ?? 0) + 1;
    nodes++;
  }
  const init = {
    count: 0,
    bytes: 0,
    inline: { count: 0, bytes: 0 },
    external: { count: 0, bytes: 0, files: 0, missingFiles: missing },
    dtypes: {} as Record<string, number>,
  };
  const files = new Set<string>();
  for (const v of model.graph.initializers.values()) {
    const t = v.initializer!;
    init.count++;
    init.bytes += t.byteLength;
    init.dtypes[dtypeName(t.dtype)] = (init.dtypes[dtypeName(t.dtype)] ?? 0) + 1;
    if (t.storage.kind === 'external') {
      init.external.count++;
      init.external.bytes += t.byteLength;
      files.add(t.storage.location);
    } else {
      init.inline.count++;
      init.inline.bytes += t.byteLength;
    }
  }
  init.external.files = files.size;
  const index = indexFunctions(model.functions);
  const callers = new Map(model.functions.map((f) => [f, [] as string[]]));
  const noteCalls = (graph: Model['graph'], where: string) => {
    for (const n of graph.allNodes()) {
      const f = calledFunction(index, n);
      if (f) callers.get(f)!.push(`${where}${n.name || n.outputs[0]?.name || n.opType}`);
    }
  };
  noteCalls(model.graph, '');
  for (const f of model.functions) noteCalls(f.body, `${f.label}/`);
  const functions = model.functions.map((f) => ({
    domain: f.domain,
    name: f.name,
    overload: f.overload,
    inputs: f.inputs.map((v) => v.name),
    outputs: f.outputs.map((v) => v.name),
    attributes: f.attributes.map((a) => a.name),
    nodes: [...f.body.allNodes()].length,
    opsets: Object.fromEntries([...f.opsetImports].map(([d, v]) => [d || 'ai.onnx', v])),
    calledBy: callers.get(f) ?? [],
  }));
  return {
    file,
    irVersion: model.irVersion,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    opsets: Object.fromEntries([...model.opsetImports].map(([d, v]) => [d || 'ai.onnx', v])),
    inputs: model.graph.inputs.filter((v) => !v.isInitializer).map((v) => ({ name: v.name, type: formatType(v.type) })),
    outputs: model.graph.outputs.map((v) => ({ name: v.name, type: formatType(v.type) })),
    nodes,
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    initializers: init,
    functions,
    warnings: diagnostics
      .filter((d) => d.severity === 'warning' && d.code !== 'DELTAC_W_EXTERNAL_MISSING')
      .map((d) => ({ code: d.code, message: d.message, ...(d.where !== undefined ? { where: d.where } : {}) })),
  };
}

const MAX_WARNINGS_SHOWN = 20;

export function renderSummary(s: ModelSummary): string {
  const lines: string[] = [];
  lines.push(`model        ${s.file}`);
  lines.push(`ir_version   ${s.irVersion}${s.producer ? `   producer ${s.producer}` : ''}`);
  lines.push(`opsets       ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`);
  lines.push('');
  lines.push(table(['input', 'type'], s.inputs.map((i) => [i.name, i.type])));
  lines.push('');
  lines.push(table(['output', 'type'], s.outputs.map((o) => [o.name, o.type])));
  lines.push('');
  lines.push(`nodes        ${s.nodes}`);
  lines.push(table(['op', 'count'], Object.entries(s.ops).map(([k, v]) => [k, v]), ['l', 'r']));
  lines.push('');
  const i = s.initializers;
  lines.push(`initializers ${i.count}, ${formatBytes(i.bytes)} (${Object.entries(i.dtypes).map(([d, n]) => `${n} ${d}`).join(', ')})`);
  lines.push(`  inline     ${i.inline.count} tensors, ${formatBytes(i.inline.bytes)}`);
  lines.push(`  external   ${i.external.count} tensors, ${formatBytes(i.external.bytes)} in ${i.external.files} file(s)`);
  if (i.external.missingFiles.length) {
    const shown = i.external.missingFiles.slice(0, 5).join(', ');
    const more = i.external.missingFiles.length > 5 ? `, … (${i.external.missingFiles.length - 5} more)` : '';
    lines.push(`  MISSING    ${i.external.missingFiles.length} external data file(s): ${shown}${more}`);
  }
  if (s.functions.length) {
    lines.push('');
    lines.push(`functions    ${s.functions.length} local (a runtime without a kernel for the op runs the body)`);
    const callers = (c: string[]) => (c.length <= 2 ? c.join(', ') : `${c.slice(0, 2).join(', ')}, … (${c.length} in all)`);
    lines.push(
      table(
        ['function', 'inputs', 'nodes', 'calls', 'called by'],
        s.functions.map((f) => [functionLabel(f.domain, f.name, f.overload), f.inputs.length, f.nodes, f.calledBy.length, callers(f.calledBy) || '(none)']),
        ['l', 'r', 'r', 'r', 'l'],
      ),
    );
  }
  if (s.warnings.length) {
    lines.push('');
    lines.push(`warnings     ${s.warnings.length}`);
    for (const w of s.warnings.slice(0, MAX_WARNINGS_SHOWN)) lines.push(`  ${w.code}: ${w.message}`);
    if (s.warnings.length > MAX_WARNINGS_SHOWN) lines.push(`  … ${s.warnings.length - MAX_WARNINGS_SHOWN} more (all in --json)`);
  }
  return lines.join('\n');
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show opsets, inputs/outputs, op histogram and weight storage of a model',
  usage: 'deltac inspect <model.onnx | pipeline-dir> [--json]\n  A pipeline folder lists its components, the UNet\'s inputs and whether it is converted, the scheduler and tokenizers.',
  options: { json: { type: 'boolean' } },
  run(positionals, values, io) {
    const file = positionals[0];
    if (!file) throw new DeltacError('DELTAC_E_BAD_OPTION', `missing model path. Usage: ${this.usage}`);
    if (isDirectory(file)) return inspectPipelineCommand(file, values, io);
    const { model, diagnostics } = loadModelWithReport(file, { missingExternalData: 'warn' });
    const missing = diagnostics.filter((d) => d.code === 'DELTAC_W_EXTERNAL_MISSING').map((d) => d.message.replace(/^external data file "(.*)" is missing$/, '$1'));
    const summary = summarizeModel(model, path.normalize(file), missing, diagnostics);
    io.out(values.json ? JSON.stringify(summary, null, 2) : renderSummary(summary));
  },
};
