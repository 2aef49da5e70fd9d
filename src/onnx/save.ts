/**
 * deltac IR → ONNX protobuf. Large tensors go to one external-data file next to
 * the model (laid out and written by data-file.ts: a kernel copy of the input's data
 * file where that holds most of it, else packed), small ones stay inline. Writing
 * is atomic: temp files are renamed into place only when everything succeeded, and
 * removed otherwise — also when the save is aborted (the CLI aborts it on SIGINT,
 * SIGTERM and SIGHUP); temp files that a killed process left next to the output are
 * removed by the next save to it (temp-files.ts). The input model, its data files
 * and the files deferred tensors are read from are never overwritten unless
 * `force` is set.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type Attribute, ONNX_ATTRIBUTE_TYPES } from '../ir/attribute.js';
import { DataType, byteSizeOf } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import type { LocalFunction } from '../ir/function.js';
import type { Graph } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import type { Tensor } from '../ir/tensor.js';
import type { Dim, ValueType } from '../ir/types.js';
import type { Value } from '../ir/value.js';
import { type BaseCopy, type DataLayout, PlannedDataFile, WrittenExtent, baseCandidate, fileRange, layoutDataFile, writeDataFile, writeDataFileAsync } from './data-file.js';
import { FileByteSource } from './external-data.js';
import { decodeModel } from './load.js';
import type { P } from './proto-util.js';
import { ModelProtoType } from './schema.js';
import { type StaleTempFile, removeStaleTempFiles, tempTag } from './temp-files.js';

const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Headroom for the graph itself when deciding whether weights fit inline. */
const INLINE_BUDGET = PROTOBUF_LIMIT - 64 * 2 ** 20;

export interface SaveOptions {
  /**
   * Where tensor data goes: `true` one external file, `false` inline, `'auto'`
   * (default) external when the input used external data or the model would
   * exceed protobuf's 2 GB.
   */
  externalData?: boolean | 'auto';
  /** File name of the external data, relative to the model (default `<model file>.data`). */
  externalDataName?: string;
  /** Tensors smaller than this many bytes stay inline even with external data (default 1024). */
  sizeThreshold?: number;
  /** Tensors of at least this size start on a 4 KiB boundary (default 1 MiB; smaller ones on 64 bytes). */
  alignThreshold?: number;
  /**
   * Reference the input's external files instead of copying unchanged tensors into
   * the new data file. Only possible when the output sits in the same folder as
   * the input; the output then depends on the input's data files.
   */
  reuseWeights?: boolean;
  /** Allow overwriting the input model or its data files. */
  force?: boolean;
  /**
   * Pack the external data tightly even when the input's data file could be copied
   * as a whole (see data-file.ts): a smaller file, written more slowly.
   */
  compact?: boolean;
  /** Called while tensor bytes are written. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * Aborting it stops the save: its temp files are removed at once (synchronously,
   * in the abort event), and the save rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * The model as `saveModelAsync` is writing it, handed to `whilePlanned` once the
 * layout is decided and the protobuf encoded, before the data file is complete.
 */
export interface PlannedSave {
  /**
   * The saved model, decoded from the protobuf being written; the bytes of its
   * external data are those the data file will hold (data-file.ts, PlannedDataFile),
   * readable now.
   */
  model: Model;
  /** Resolves when the data file is written (before anything is renamed into place). */
  written: Promise<void>;
  /**
   * Resolves once the bytes of `tensors` (of `model`) are in the data file as it will
   * stay: reading them then reads the file being written, not the plan.
   */
  whenWritten(tensors: Iterable<Tensor>): Promise<void>;
  /**
   * Once `written`: compares every byte range read from `model`'s data file before it
   * was written there with the file; the first that differs, or null. (Reads that pass
   * here, or waited for `whenWritten`, read the saved file.)
   */
  verify(): { offset: number; length: number } | null;
}

export interface SaveResult {
  modelPath: string;
  modelBytes: number;
  externalDataPath?: string;
  externalDataBytes: number;
  /** Tensors written to the external file / kept inline / referenced in the input's files. */
  externalTensors: number;
  inlineTensors: number;
  reusedTensors: number;
  /** The input data file the external data started as a copy of, if any. */
  baseCopy?: BaseCopy;
  /** Temp files of interrupted saves to the same output (their process gone) that were removed. */
  staleTempFiles: StaleTempFile[];
}

interface PlannedTensor {
  tensor: Tensor;
  mode: 'inline' | 'external' | 'reuse';
  offset: number;
}

export function saveModel(model: Model, file: string, options: SaveOptions = {}): SaveResult {
  const job = planSave(model, file, options);
  try {
    if (job.data) {
      job.written.push(job.tmpData);
      writeDataFile(job.tmpData, job.data, options);
    }
    return commitSave(job, model);
  } catch (e) {
    return failSave(job, e);
  } finally {
    job.release();
  }
}

/**
 * `saveModel` with the external data written on libuv's thread pool (the base copy
 * in the kernel, reads overlapping writes): what `deltac convert` uses.
 */
export async function saveModelAsync(
  model: Model,
  file: string,
  options: SaveOptions & {
    early?: EarlyDataCopy;
    /**
     * Runs while the data file is written (a check of the model as saved): the save
     * commits once both are done, and fails (removing its temp files) if it rejects.
     */
    whilePlanned?: (planned: PlannedSave) => Promise<void>;
  } = {},
): Promise<SaveResult> {
  const early = options.early;
  let job: SaveJob;
  try {
    job = planSave(model, file, options);
  } catch (e) {
    early?.discard();
    throw e;
  }
  const adopt = early !== undefined && job.data?.base?.path === early.base;
  if (adopt) {
    job.tmpData = early.tmp;
    job.staleTempFiles.push(...early.staleTempFiles);
  } else early?.discard();
  try {
    // The model protobuf is encoded while the data file is being written (the kernel copies the base meanwhile).
    let bytes: Uint8Array;
    let writing: Promise<void> = Promise.resolve();
    const data = job.data;
    const extent = new WrittenExtent();
    if (data) {
      job.written.push(job.tmpData);
      if (!adopt) writing = writeDataFileAsync(job.tmpData, data, { ...options, written: extent });
      try {
        bytes = encodeModel(job, model);
      } catch (e) {
        await writing.catch(() => {});
        throw e;
      }
      if (adopt) writing = writeDataFileAsync(job.tmpData, data, { ...options, baseCopy: early.done, written: extent });
    } else bytes = encodeModel(job, model);
    writing.catch(() => {}); // awaited below
    const checking = options.whilePlanned?.(plannedSave(job, bytes, writing, extent));
    checking?.catch(() => {});
    await writing;
    await checking;
    options.signal?.throwIfAborted();
    return commitSave(job, model, bytes);
  } catch (e) {
    return failSave(job, e);
  } finally {
    job.release();
  }
}

/** Where everything goes, decided before anything is written. */
interface SaveJob {
  outPath: string;
  dataPath: string;
  dataName: string;
  plan: Map<Tensor, PlannedTensor>;
  /** The external-data file, when there is one to write. */
  data?: DataLayout;
  externalBytes: number;
  tmpModel: string;
  tmpData: string;
  /** Temp files created so far (removed on failure). */
  written: string[];
  renamedData: boolean;
  staleTempFiles: StaleTempFile[];
  /** Removes the abort listener. */
  release: () => void;
}

/** The output's paths, checked before anything is written: its folder exists, nothing is a folder, no input is overwritten. */
function outputPaths(model: Model, file: string, options: SaveOptions): { outPath: string; outDir: string; dataName: string; dataPath: string } {
  const outPath = path.resolve(file);
  const outDir = path.dirname(outPath);
  if (!isDirectory(outDir)) {
    throw new DeltacError('DELTAC_E_WRITE', `output folder "${outDir}" does not exist (or is not a folder)`);
  }
  const dataName = options.externalDataName ?? `${path.basename(outPath)}.data`;
  if (dataName.includes('/') || dataName.includes('\\') || dataName === '..' || dataName === '.') {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `external data name "${dataName}" must be a plain file name`);
  }
  const dataPath = path.join(outDir, dataName);
  // Caught now rather than at the final rename, which would leave the data file behind.
  for (const p of [outPath, dataPath]) {
    if (isDirectory(p)) throw new DeltacError('DELTAC_E_WRITE', `cannot write "${p}": it is a folder; give a file name with -o`);
  }
  protectInputs(model, [outPath, dataPath], options.force === true);
  return { outPath, outDir, dataName, dataPath };
}

/**
 * The base copy of the external data (data-file.ts), started before the model is
 * converted so that the kernel copies the input's data file while the conversion
 * runs. `saveModelAsync(…, { early })` adopts it when its layout starts from the same
 * file and removes it otherwise; `discard()` removes it (a conversion that failed or
 * was interrupted: the kernel may still be writing it, into a file no longer named).
 */
export interface EarlyDataCopy {
  /** The input file being copied. */
  readonly base: string;
  /** The temp file it is copied to. */
  readonly tmp: string;
  readonly done: Promise<void>;
  /** Temp files of interrupted saves to the same output, removed before the copy began. */
  readonly staleTempFiles: StaleTempFile[];
  discard(): void;
}

/**
 * Starts the base copy for saving `model` (still to be converted) to `file` when the
 * save will probably start from one: external data, one input file holding most of
 * the tensors. Checks the output paths as the save will (throws the same errors).
 */
export function startDataCopy(model: Model, file: string, options: SaveOptions = {}): EarlyDataCopy | undefined {
  if (options.externalData === false || options.reuseWeights || options.compact) return undefined;
  const { outPath, outDir, dataName, dataPath } = outputPaths(model, file, options);
  const candidate = baseCandidate(collectTensors(model));
  if (!candidate) return undefined;
  const staleTempFiles = removeStaleTempFiles(outDir, [path.basename(outPath), dataName]);
  const tmp = dataPath + tempTag();
  const done = fsp.copyFile(candidate.file.path, tmp, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
  done.catch(() => {}); // reported by the save that adopts it
  let discarded = false;
  return {
    base: candidate.file.path,
    tmp,
    done,
    staleTempFiles,
    discard() {
      if (discarded) return;
      discarded = true;
      fs.rmSync(tmp, { force: true });
      // a copy not started yet creates the file later: removed once it is done
      void done.finally(() => fs.rmSync(tmp, { force: true })).catch(() => {});
    },
  };
}

function planSave(model: Model, file: string, options: SaveOptions): SaveJob {
  const { outPath, outDir, dataName, dataPath } = outputPaths(model, file, options);

  const tensors = collectTensors(model);
  const sizeThreshold = options.sizeThreshold ?? 1024;
  const alignThreshold = options.alignThreshold ?? 2 ** 20;
  const total = tensors.reduce((a, t) => a + t.byteLength, 0);
  const inputUsedExternal = tensors.some((t) => t.storage.kind === 'external');
  const external =
    options.externalData === true || (options.externalData !== false && (inputUsedExternal || total > INLINE_BUDGET));
  if (!external && total > INLINE_BUDGET) {
    throw new DeltacError(
      'DELTAC_E_MODEL_TOO_LARGE',
      `the model's tensors take ${total} bytes, more than fits in one 2 GB protobuf; save with external data`,
    );
  }
  if (options.reuseWeights && model.baseDir && path.resolve(model.baseDir) !== outDir) {
    throw new DeltacError(
      'DELTAC_E_BAD_OPTION',
      `--reuse-weights needs the output in the input model's folder (${model.baseDir}): external-data locations cannot leave the model folder`,
    );
  }

  // Plan: which tensor goes where (deterministic: graph order; offsets from data-file.ts).
  const plan = new Map<Tensor, PlannedTensor>();
  const toData: Tensor[] = [];
  for (const t of tensors) {
    if (plan.has(t)) continue;
    if (t.storage.kind === 'external' && options.reuseWeights) {
      plan.set(t, { tensor: t, mode: 'reuse', offset: t.storage.offset });
    } else if (external && t.byteLength >= sizeThreshold && t.storage.kind !== 'strings') {
      plan.set(t, { tensor: t, mode: 'external', offset: 0 });
      toData.push(t);
    } else {
      plan.set(t, { tensor: t, mode: 'inline', offset: 0 });
    }
  }
  // Constants of function bodies stay inline: a function is self-contained.
  for (const t of functionTensors(model)) if (!plan.has(t)) plan.set(t, { tensor: t, mode: 'inline', offset: 0 });
  const layout = toData.length ? layoutDataFile(toData, { alignThreshold, compact: options.compact }) : undefined;
  for (const [t, offset] of layout?.offsets ?? []) plan.get(t)!.offset = offset;
  const externalBytes = layout?.bytes ?? 0;
  if (externalBytes > 0 && options.reuseWeights) {
    // Even with --force: the new data file would replace one that reused tensors still point into.
    for (const p of plan.values()) {
      if (p.mode === 'reuse' && p.tensor.storage.kind === 'external' && p.tensor.storage.source instanceof FileByteSource && sameFile(p.tensor.storage.source.path, dataPath)) {
        throw new DeltacError(
          'DELTAC_E_OUTPUT_EXISTS',
          `refusing to write "${dataPath}": with --reuse-weights the output still reads tensors from that file; choose another output name`,
        );
      }
    }
  }

  const staleTempFiles = removeStaleTempFiles(outDir, [path.basename(outPath), dataName]);
  const tag = tempTag();
  const job: SaveJob = {
    outPath,
    dataPath,
    dataName,
    plan,
    data: layout && layout.bytes > 0 ? layout : undefined,
    externalBytes,
    tmpModel: outPath + tag,
    tmpData: dataPath + tag,
    written: [],
    renamedData: false,
    staleTempFiles,
    release: () => {},
  };
  // On abort the temp files go at once: a signal handler exits right after aborting.
  const signal = options.signal;
  if (signal) {
    const onAbort = () => removeWritten(job);
    signal.addEventListener('abort', onAbort, { once: true });
    job.release = () => signal.removeEventListener('abort', onAbort);
  }
  return job;
}

/** Removes what a save wrote so far (temp files; a data file renamed before its model). */
function removeWritten(job: SaveJob): void {
  for (const f of job.written) fs.rmSync(f, { force: true });
  if (job.renamedData) fs.rmSync(job.dataPath, { force: true }); // a data file without its model is useless
}

/** What `whilePlanned` sees: the model decoded from `bytes`, its data file readable as planned. */
function plannedSave(job: SaveJob, bytes: Uint8Array, written: Promise<void>, extent: WrittenExtent): PlannedSave {
  const file = job.data ? new PlannedDataFile(job.data, job.dataName, { file: job.tmpData, extent }) : undefined;
  const { model } = decodeModel(bytes, path.dirname(job.outPath), {
    missingExternalData: 'warn',
    externalSource: (location) => (location === job.dataName ? file : undefined),
  }, job.outPath);
  model.sourcePath = job.outPath;
  const whenWritten = (tensors: Iterable<Tensor>): Promise<void> => {
    let end = 0;
    for (const t of tensors) if (file && t.storage.kind === 'external' && t.storage.source === file) end = Math.max(end, t.storage.offset + t.storage.length);
    return file && end > 0 ? file.whenWritten(end) : Promise.resolve();
  };
  return { model, written, whenWritten, verify: () => (file ? file.verify(job.tmpData) : null) };
}

/** The model protobuf, tensors placed as planned. */
function encodeModel(job: SaveJob, model: Model): Uint8Array {
  const bytes = ModelProtoType.encode(new ProtoEncoder(job.plan, job.dataName).model(model)).finish();
  if (bytes.length > PROTOBUF_LIMIT) {
    throw new DeltacError('DELTAC_E_MODEL_TOO_LARGE', `the serialized model is ${bytes.length} bytes (over 2 GB); save with external data`);
  }
  return bytes;
}

/** Writes the model protobuf and renames the temp files into place (data first). */
function commitSave(job: SaveJob, model: Model, bytes = encodeModel(job, model)): SaveResult {
  job.written.push(job.tmpModel);
  writeFileDurable(job.tmpModel, bytes);
  if (job.written.includes(job.tmpData)) {
    fs.renameSync(job.tmpData, job.dataPath);
    job.renamedData = true;
  }
  fs.renameSync(job.tmpModel, job.outPath);
  const counts = { externalTensors: 0, inlineTensors: 0, reusedTensors: 0 };
  for (const p of job.plan.values()) counts[`${p.mode === 'reuse' ? 'reused' : p.mode}Tensors` as keyof typeof counts]++;
  return {
    modelPath: job.outPath,
    modelBytes: bytes.length,
    externalDataPath: job.externalBytes > 0 ? job.dataPath : undefined,
    externalDataBytes: job.externalBytes,
    ...counts,
    ...(job.data?.base ? { baseCopy: job.data.base } : {}),
    staleTempFiles: job.staleTempFiles,
  };
}

/** Removes everything a failed save wrote, and rethrows as a DeltacError. */
function failSave(job: SaveJob, e: unknown): never {
  removeWritten(job);
  if (e instanceof DeltacError) throw e;
  if ((e as Error)?.name === 'AbortError') throw e; // the signal's reason
  throw new DeltacError('DELTAC_E_WRITE', `could not write "${job.outPath}": ${(e as Error).message}`, undefined, { cause: e });
}

/** Serializes a model to bytes with all tensor data inline (small models, tests). */
export function serializeModel(model: Model): Uint8Array {
  const plan = new Map<Tensor, PlannedTensor>();
  for (const t of [...collectTensors(model), ...functionTensors(model)]) plan.set(t, { tensor: t, mode: 'inline', offset: 0 });
  return ModelProtoType.encode(new ProtoEncoder(plan, '').model(model)).finish();
}

/** Refuses to overwrite the files the model was loaded from. */
function protectInputs(model: Model, outputs: string[], force: boolean): void {
  if (force) return;
  const inputs = new Set<string>();
  const add = (p: string) => {
    try {
      const st = fs.statSync(p);
      inputs.add(`${st.dev}:${st.ino}`);
      inputs.add(path.resolve(p));
    } catch {
      inputs.add(path.resolve(p));
    }
  };
  if (model.sourcePath) add(model.sourcePath);
  // …and every file a tensor is still read from (a deferred weight's checkpoint too): each file once
  const files = new Set<string>();
  for (const t of collectTensors(model)) {
    const r = fileRange(t);
    if (r) files.add(r.file.path);
  }
  files.forEach(add);
  for (const out of outputs) {
    let key = path.resolve(out);
    let clash = inputs.has(key);
    try {
      const st = fs.statSync(out);
      key = `${st.dev}:${st.ino}`;
      clash ||= inputs.has(key);
    } catch {
      // does not exist: fine
    }
    if (clash) {
      throw new DeltacError(
        'DELTAC_E_OUTPUT_EXISTS',
        `refusing to overwrite "${out}": it is the input model or one of its data files, or the checkpoint the conversion reads; choose another output path or pass --force`,
      );
    }
  }
}

/** Every tensor the main graph holds (initializers, tensor attributes, subgraphs), in graph order. */
function collectTensors(model: Model): Tensor[] {
  return graphTensors([model.graph]);
}

/** Tensors in function bodies (Constant values, attribute defaults). */
function functionTensors(model: Model): Tensor[] {
  const out = graphTensors(model.functions.map((f) => f.body));
  for (const f of model.functions) for (const a of f.attributes) if (a.default) attributeTensors(a.default, out, (g) => out.push(...graphTensors([g])));
  return out;
}

/** An attribute's tensors into `out`; its subgraphs to `visit`. */
function attributeTensors(a: Attribute, out: Tensor[], visit: (g: Graph) => void): void {
  if (a.type === 'tensor') out.push(a.value);
  else if (a.type === 'tensors') out.push(...a.value);
  else if (a.type === 'graph') visit(a.value);
  else if (a.type === 'graphs') a.value.forEach(visit);
}

function graphTensors(graphs: Graph[]): Tensor[] {
  const out: Tensor[] = [];
  const visit = (g: Graph) => {
    for (const v of g.initializers.values()) out.push(v.initializer!);
    for (const n of g.nodes) {
      for (const a of n.attributes.values()) attributeTensors(a, out, visit);
    }
  };
  graphs.forEach(visit);
  return out;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Same file: equal paths, or (through symlinks and hard links) the same inode. */
export function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

// Temp files are created exclusively ('wx'): never through a symlink or over a file planted at that name.
function writeFileDurable(file: string, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'wx');
  try {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Builds protobufjs message objects from the IR. */
class ProtoEncoder {
  constructor(
    private readonly plan: Map<Tensor, PlannedTensor>,
    private readonly dataName: string,
  ) {}

  model(m: Model): P {
    return compact({
      irVersion: m.irVersion,
      opsetImport: [...m.opsetImports].map(([domain, version]) => compact({ domain, version })),
      producerName: m.producerName,
      producerVersion: m.producerVersion,
      domain: m.domain,
      modelVersion: m.modelVersion || undefined,
      docString: m.docString,
      graph: this.graph(m.graph),
      metadataProps: kv(m.metadataProps),
      functions: m.functions.map((f) => this.function(f)),
      trainingInfo: m.extra.trainingInfo ?? [],
      configuration: m.extra.configuration ?? [],
    });
  }

  graph(g: Graph): P {
    return compact(this.graphFields(g));
  }

  private graphFields(g: Graph): P {
    const valueInfo: P[] = [];
    const inputsAndOutputs = new Set<Value>([...g.inputs, ...g.outputs]);
    const addInfo = (v: Value) => {
      if (v.hasValueInfo && !inputsAndOutputs.has(v) && !v.omitted) valueInfo.push(this.valueInfo(v));
    };
    for (const n of g.nodes) n.outputs.forEach(addInfo);
    for (const v of g.initializers.values()) addInfo(v);
    return {
      node: g.nodes.map((n) => this.node(n)),
      name: g.name,
      initializer: [...g.initializers.values()].map((v) => this.tensor(v.initializer!, v.name)),
      sparseInitializer: g.extra.sparseInitializer ?? [],
      docString: g.docString,
      input: g.inputs.map((v) => this.valueInfo(v)),
      output: g.outputs.map((v) => this.valueInfo(v)),
      valueInfo,
      quantizationAnnotation: g.extra.quantizationAnnotation ?? [],
      metadataProps: kv(g.metadataProps),
    };
  }

  node(n: Node): P {
    return compact({
      input: n.inputs.map((v) => (v ? v.name : '')),
      output: n.outputs.map((v) => (v.omitted ? '' : v.name)),
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      overload: n.overload,
      attribute: [...n.attributes].map(([name, a]) => this.attribute(name, a)),
      docString: n.docString,
      metadataProps: kv(n.metadataProps),
      deviceConfigurations: n.extra.deviceConfigurations ?? [],
    });
  }

  function(f: LocalFunction): P {
    const body = f.body;
    const live = (v: Value) => body.lookup(v.name) === v;
    return compact({
      name: f.name,
      input: body.inputs.map((v) => v.name),
      output: body.outputs.map((v) => v.name),
      attribute: f.attributes.filter((a) => !a.default).map((a) => a.name),
      attributeProto: f.attributes.filter((a) => a.default).map((a) => this.attribute(a.name, a.default!)),
      node: body.nodes.map((n) => this.node(n)),
      docString: f.docString,
      opsetImport: [...f.opsetImports].map(([domain, version]) => compact({ domain, version })),
      domain: f.domain,
      overload: f.overload,
      valueInfo: f.valueInfo.filter(live).map((v) => this.valueInfo(v)),
      metadataProps: kv(f.metadataProps),
    });
  }

  valueInfo(v: Value): P {
    return compact({ name: v.name, type: v.type ? encodeType(v.type) : undefined, docString: v.docString, metadataProps: kv(v.metadataProps) });
  }

  attribute(name: string, a: Attribute): P {
    switch (a.type) {
      case 'float':
        return { name, type: 1, f: a.value };
      case 'int':
        return { name, type: 2, i: int64(a.value) };
      case 'string':
        return { name, type: 3, s: Buffer.from(a.value, 'utf8') };
      case 'tensor':
        return { name, type: 4, t: this.tensor(a.value, a.value.name) };
      case 'graph':
        return { name, type: 5, g: this.graph(a.value) };
      case 'floats':
        return { name, type: 6, floats: a.value };
      case 'ints':
        return { name, type: 7, ints: a.value.map(int64) };
      case 'strings':
        return { name, type: 8, strings: a.value.map((s) => Buffer.from(s, 'utf8')) };
      case 'tensors':
        return { name, type: 9, tensors: a.value.map((t) => this.tensor(t, t.name)) };
      case 'graphs':
        return { name, type: 10, graphs: a.value.map((g) => this.graph(g)) };
      case 'ref': {
        const type = ONNX_ATTRIBUTE_TYPES.indexOf(a.of);
        return type > 0 ? { name, refAttrName: a.ref, type } : { name, refAttrName: a.ref };
      }
      case 'opaque':
        return a.proto;
    }
  }

  tensor(t: Tensor, name: string): P {
    return compact(this.tensorFields(t, name));
  }

  private tensorFields(t: Tensor, name: string): P {
    const base: P = {
      dims: t.dims,
      dataType: t.dtype,
      name,
      docString: t.docString,
      metadataProps: kv(t.metadataProps),
      ...(t.extra.segment ? { segment: t.extra.segment } : {}),
    };
    const planned = this.plan.get(t);
    const s = t.storage;
    if (s.kind === 'strings') return { ...base, stringData: s.values };
    if (planned?.mode === 'external') {
      return {
        ...base,
        dataLocation: 1,
        externalData: kv([
          ['location', this.dataName],
          ['offset', String(planned.offset)],
          ['length', String(t.byteLength)],
        ]),
      };
    }
    if (planned?.mode === 'reuse' && s.kind === 'external') {
      return {
        ...base,
        dataLocation: 1,
        externalData: kv([
          ['location', s.location],
          ['offset', String(s.offset)],
          ['length', String(s.length)],
          ...s.extraEntries,
        ]),
      };
    }
    if (s.kind === 'elided') {
      throw new DeltacError('DELTAC_E_TENSOR_DATA', `tensor "${name}" has no data (elided in the textual IR); it cannot be saved`);
    }
    const bytes = t.bytes();
    if (bytes.length === 0) return base; // an empty tensor has no data field (as the loader found it)
    if (s.kind === 'inline' && s.encoding === 'typed') return { ...base, ...rawToTyped(t.dtype, bytes, t.elementCount) };
    return { ...base, rawData: bytes };
  }
}

/** Drops empty strings, empty lists and undefined fields so that absent fields stay absent on the wire. */
function compact(o: P): P {
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) delete o[k];
  }
  return o;
}

function kv(list: [string, string][]): P[] {
  return list.map(([key, value]) => ({ key, value }));
}

export function encodeType(t: ValueType): P {
  if (t.kind === 'opaque') return t.proto;
  const denote = t.dimDenotations?.length === t.shape?.length ? t.dimDenotations : undefined;
  const dim = (d: Dim, i: number): P => {
    // An unknown dim is written as `dim {}` (unknown, unnamed), never as a value.
    const out: P = d === null ? {} : typeof d === 'number' ? { dimValue: int64(d) } : { dimParam: d };
    if (denote?.[i]) out.denotation = denote[i];
    return out;
  };
  return compact({
    tensorType: {
      elemType: t.dtype,
      shape: t.shape ? { dim: t.shape.map(dim) } : undefined,
    },
    denotation: t.denotation,
  });
}

/** Raw little-endian bytes → the typed field the tensor was read from. */
function rawToTyped(dtype: DataType, bytes: Uint8Array, n: number): P {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = <T>(count: number, f: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => f(i));
  switch (dtype) {
    case DataType.FLOAT:
      return { floatData: read(n, (i) => dv.getFloat32(i * 4, true)) };
    case DataType.COMPLEX64:
      return { floatData: read(n * 2, (i) => dv.getFloat32(i * 4, true)) };
    case DataType.DOUBLE:
      return { doubleData: read(n, (i) => dv.getFloat64(i * 8, true)) };
    case DataType.COMPLEX128:
      return { doubleData: read(n * 2, (i) => dv.getFloat64(i * 8, true)) };
    case DataType.INT64:
      return { int64Data: read(n, (i) => longOf(dv.getBigInt64(i * 8, true))) };
    case DataType.UINT64:
      return { uint64Data: read(n, (i) => longOf(dv.getBigUint64(i * 8, true), true)) };
    case DataType.UINT32:
      return { uint64Data: read(n, (i) => dv.getUint32(i * 4, true)) };
    default: {
      const size = byteSizeOf(dtype, 1);
      if (size === 4) return { int32Data: read(n, (i) => dv.getInt32(i * 4, true)) };
      if (size === 2) return { int32Data: read(n, (i) => dv.getUint16(i * 2, true)) };
      return { int32Data: read(bytes.length, (i) => (dtype === DataType.INT8 ? dv.getInt8(i) : dv.getUint8(i))) };
    }
  }
}

/** An int64 for protobufjs: numbers beyond 2^53 (INT64_MAX as a double) are clamped to the int64 range. */
function int64(v: number): number | { low: number; high: number; unsigned: boolean } {
  if (Number.isSafeInteger(v)) return v;
  if (v >= 2 ** 63) return longOf(2n ** 63n - 1n);
  if (v <= -(2 ** 63)) return longOf(-(2n ** 63n));
  return longOf(BigInt(Math.trunc(v)));
}

/** A protobufjs Long-compatible object for an exact 64-bit integer. */
function longOf(v: bigint, unsigned = false): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned };
}
