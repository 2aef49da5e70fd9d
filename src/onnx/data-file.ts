/**
 * The external-data file of a saved model: where each tensor goes (the layout) and
 * how its bytes get there (the writers).
 *
 * Layout. Normally the tensors are packed in graph order (those of 1 MiB or more on
 * 4 KiB boundaries, smaller ones on 64 bytes). But when one file the tensors come
 * from — the input's data file — holds most of what the output keeps (a conversion
 * keeps every weight but the attention projections), that file is the *base*: the
 * new data file starts as a kernel copy of it (`fs.copyFile`: a reflink where the
 * file system has one, else copy_file_range; no byte passes through JavaScript), its
 * tensors stay at their offsets, and the other tensors (the ΔConvBlock weights) go
 * into the ranges that nothing references any more (the removed weights) or after
 * its end. What they do not fill stays in the file, unreferenced: a base is used
 * only when it holds at least half of the output's tensor bytes and leaves at most
 * 1/8 of itself unreferenced (SDXL base fp32: 0.8 of 10.3 GB); `compact` turns it off.
 *
 * Writing. Everything else is written in destination order by one sequential
 * writer, while the next piece is read (or computed, for deferred tensors) — large
 * pieces, one open descriptor per source file, adjacent ranges merged.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { DeltacError } from '../ir/errors.js';
import type { ByteSource, Tensor } from '../ir/tensor.js';
import { FileByteSource } from './external-data.js';

const ALIGN_BIG = 4096;
const ALIGN_SMALL = 64;
/** Largest piece read and written at once. */
const PIECE = 16 * 2 ** 20;
/** A base must be at least this big (smaller files are packed: nothing to gain). */
const BASE_MIN_BYTES = 64 * 2 ** 20;
/** …hold at least this share of the data file's tensors… */
const BASE_MIN_SHARE = 1 / 2;
/** …and keep at most this share of itself unreferenced. */
const BASE_MAX_UNREFERENCED = 1 / 8;

export interface LayoutOptions {
  /** Tensors of at least this size start on a 4 KiB boundary (smaller ones on 64 bytes). */
  alignThreshold: number;
  /** Never start from a copy of an input file: pack every tensor (the smallest file). */
  compact?: boolean;
}

/** The input file the data file starts as a copy of. */
export interface BaseCopy {
  path: string;
  bytes: number;
  /** Bytes of it that no tensor of the output references (removed weights not overwritten). */
  unreferencedBytes: number;
}

export interface DataLayout {
  /** Offset of every tensor in the data file. */
  offsets: Map<Tensor, number>;
  /** Tensors to write, in file order (those kept in a base copy are not among them). */
  writes: { tensor: Tensor; offset: number }[];
  base?: BaseCopy;
  /** Size of the data file. */
  bytes: number;
}

/** Where a tensor's bytes lie verbatim in a file, if they do. */
export function fileRange(t: Tensor): { file: FileByteSource; offset: number; length: number } | undefined {
  const s = t.storage;
  if (s.kind === 'external' && s.source instanceof FileByteSource) return { file: s.source, offset: s.offset, length: s.length };
  if (s.kind === 'deferred' && s.range?.source instanceof FileByteSource) return { file: s.range.source, offset: s.range.offset, length: s.length };
  return undefined;
}

const alignOf = (size: number, threshold: number) => (size >= threshold ? ALIGN_BIG : ALIGN_SMALL);
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Lays out `tensors` (distinct, in graph order) in one data file. */
export function layoutDataFile(tensors: Tensor[], options: LayoutOptions): DataLayout {
  return (options.compact ? undefined : baseLayout(tensors, options)) ?? packedLayout(tensors, options);
}

function packedLayout(tensors: Tensor[], options: LayoutOptions): DataLayout {
  const offsets = new Map<Tensor, number>();
  const writes: DataLayout['writes'] = [];
  let end = 0;
  for (const t of tensors) {
    const offset = alignUp(end, alignOf(t.byteLength, options.alignThreshold));
    offsets.set(t, offset);
    writes.push({ tensor: t, offset });
    end = offset + t.byteLength;
  }
  return { offsets, writes, bytes: end };
}

/**
 * The file a base copy would start from: the one the tensors' bytes come from most,
 * when it is big enough and holds at least half of them. Decided again on the final
 * tensors by the layout; a caller may start copying it early (save.ts: startDataCopy).
 */
export function baseCandidate(tensors: Tensor[]): { file: FileByteSource; size: number } | undefined {
  const kept = new Map<string, { file: FileByteSource; bytes: number }>();
  for (const t of tensors) {
    const r = fileRange(t);
    if (!r) continue;
    const k = kept.get(r.file.path) ?? { file: r.file, bytes: 0 };
    k.bytes += r.length;
    kept.set(r.file.path, k);
  }
  const best = [...kept.values()].sort((a, b) => b.bytes - a.bytes)[0];
  // Worth it only when the copy is most of the file (not one big tensor's file among hundreds).
  const total = tensors.reduce((a, t) => a + t.byteLength, 0);
  if (!best || best.bytes < total * BASE_MIN_SHARE) return undefined;
  let size: number;
  try {
    size = fs.statSync(best.file.path).size;
  } catch {
    return undefined; // reported by the packed path's reads
  }
  return size >= BASE_MIN_BYTES ? { file: best.file, size } : undefined;
}

function baseLayout(tensors: Tensor[], options: LayoutOptions): DataLayout | undefined {
  const candidate = baseCandidate(tensors);
  if (!candidate) return undefined;
  const { file: best, size } = candidate;
  const offsets = new Map<Tensor, number>();
  const ranges: [number, number][] = [];
  const others: Tensor[] = [];
  for (const t of tensors) {
    const r = fileRange(t);
    if (r && r.file.path === best.path && r.offset + r.length <= size) {
      offsets.set(t, r.offset);
      ranges.push([r.offset, r.offset + r.length]);
    } else others.push(t);
  }
  // The ranges no kept tensor covers, in file order.
  ranges.sort((a, b) => a[0] - b[0]);
  const gaps: [number, number][] = [];
  let at = 0;
  for (const [s, e] of ranges) {
    if (s > at) gaps.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < size) gaps.push([at, size]);
  // The others, largest first, each into the first gap it fits (aligned), else after the end.
  const writes: DataLayout['writes'] = [];
  let end = size;
  const order = others.map((t, i) => ({ t, i })).sort((a, b) => b.t.byteLength - a.t.byteLength || a.i - b.i);
  for (const { t } of order) {
    const align = alignOf(t.byteLength, options.alignThreshold);
    let offset = -1;
    for (let g = 0; g < gaps.length; g++) {
      const [s, e] = gaps[g]!;
      const start = alignUp(s, align);
      if (start + t.byteLength > e) continue;
      offset = start;
      gaps.splice(g, 1, ...([[s, start], [start + t.byteLength, e]] as [number, number][]).filter(([a, b]) => b > a));
      break;
    }
    if (offset < 0) {
      offset = alignUp(end, align);
      end = offset + t.byteLength;
    }
    offsets.set(t, offset);
    writes.push({ tensor: t, offset });
  }
  const unreferencedBytes = gaps.reduce((a, [s, e]) => a + e - s, 0);
  if (unreferencedBytes > size * BASE_MAX_UNREFERENCED) return undefined;
  writes.sort((a, b) => a.offset - b.offset);
  return { offsets, writes, base: { path: best.path, bytes: size, unreferencedBytes }, bytes: end };
}

// ---- writing --------------------------------------------------------------------------

/**
 * One piece of the data file: `length` bytes at `dst`, copied from a range of a file
 * or taken from bytes in memory (a tensor's, or computed for a deferred one). Adjacent
 * file ranges are merged; pieces are at most PIECE bytes.
 */
type Piece = { dst: number; length: number } & ({ file: FileByteSource; offset: number } | { bytes: Uint8Array } | { deferred: Tensor });

function* pieces(writes: DataLayout['writes']): Generator<Piece> {
  let run: { file: FileByteSource; offset: number; dst: number; length: number } | null = null;
  function* flush(): Generator<Piece> {
    if (!run) return;
    for (let done = 0; done < run.length; done += PIECE) {
      yield { dst: run.dst + done, length: Math.min(PIECE, run.length - done), file: run.file, offset: run.offset + done };
    }
    run = null;
  }
  for (const w of writes) {
    const r = fileRange(w.tensor);
    if (r) {
      if (r.offset + r.length > r.file.size()) {
        throw new DeltacError('DELTAC_E_EXTERNAL_RANGE', `external data range is past the end of "${r.file.description}"`);
      }
      if (run && run.file === r.file && run.offset + run.length === r.offset && run.dst + run.length === w.offset) {
        run.length += r.length;
        continue;
      }
      yield* flush();
      run = { file: r.file, offset: r.offset, dst: w.offset, length: r.length };
      continue;
    }
    yield* flush();
    // A deferred tensor (a transposed checkpoint weight) is computed into the writer's buffer.
    if (w.tensor.storage.kind === 'deferred' && w.tensor.byteLength <= PIECE) {
      yield { dst: w.offset, length: w.tensor.byteLength, deferred: w.tensor };
      continue;
    }
    const bytes = w.tensor.bytes();
    for (let done = 0; done < bytes.length; done += PIECE) {
      yield { dst: w.offset + done, length: Math.min(PIECE, bytes.length - done), bytes: bytes.subarray(done, done + PIECE) };
    }
  }
  yield* flush();
}

function shortRead(file: FileByteSource): DeltacError {
  return new DeltacError('DELTAC_E_EXTERNAL_RANGE', `unexpected end of "${file.description}" (did it shrink while saving?)`);
}

export interface WriteOptions {
  /**
   * The base copy into `file` is under way already (started before the conversion:
   * save.ts, startDataCopy): its promise. The other tensors are written behind the
   * copy's front as it advances (CopyFront), so they take no time after it.
   */
  baseCopy?: Promise<void>;
  onProgress?: (done: number, total: number) => void;
  /** Checked between pieces: an aborted save stops writing (the caller removes the file). */
  signal?: AbortSignal;
  /** Told how far the file is final: every tensor byte below the offset is in it as it will stay. */
  written?: WrittenExtent;
}

/**
 * How much of a data file being written is final (writeDataFileAsync advances it after
 * each piece), so that a reader can wait for a range and read it from the file itself.
 */
export class WrittenExtent {
  private end = 0;
  private over = false;
  private waiting: { end: number; resolve: () => void }[] = [];

  /** Every tensor byte below this offset is final. */
  get final(): number {
    return this.end;
  }

  advance(end: number): void {
    this.end = Math.max(this.end, end);
    this.wake();
  }

  /** The writing is over (written or failed): nobody waits any more. */
  finish(): void {
    this.over = true;
    this.wake();
  }

  /** Resolves once bytes [0, end) are final, or the writing is over. */
  whenFinal(end: number): Promise<void> {
    if (this.over || end <= this.end) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ end, resolve }));
  }

  private wake(): void {
    const still: typeof this.waiting = [];
    for (const w of this.waiting) (this.over || w.end <= this.end ? w.resolve() : still.push(w));
    this.waiting = still;
  }
}

/**
 * How far a kernel copy into `file` has come, so that other ranges can be written
 * behind it while it runs. libuv copies a file front to back (copy_file_range or
 * sendfile, no preallocation), so the file's size is the copy's front and what lies
 * below it will not be written again. That is trusted only once a size between 0 and
 * the whole has been seen (a copy that sets the size first — a reflink, a
 * preallocating copier — is simply waited for), and only below the base's end (a
 * write past it would move the size itself).
 */
class CopyFront {
  private done = false;
  private trusted = false;
  private size = 0;

  constructor(
    private readonly file: string,
    private readonly total: number,
    copy: Promise<void>,
  ) {
    const finish = () => void (this.done = true);
    copy.then(finish, finish);
  }

  private async poll(): Promise<void> {
    try {
      const size = (await fsp.stat(this.file)).size;
      if (size > 0 && size < this.total) this.trusted = true;
      this.size = Math.max(this.size, size);
    } catch {
      // not created yet
    }
  }

  /** Bytes copied so far, as far as seen. */
  get copied(): number {
    return this.done ? this.total : Math.min(this.size, this.total);
  }

  /** Resolves once the copy writes the file (or is over). */
  async started(): Promise<void> {
    for (await this.poll(); !this.done && this.size === 0; await this.poll()) await sleep(5);
  }

  /** Resolves once bytes [0, end) are copied (or the copy is over). */
  async reached(end: number): Promise<void> {
    for (await this.poll(); !this.done && !(this.trusted && end <= this.total && this.size >= end); await this.poll()) await sleep(20);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes a write moves, for progress: the base copy, then every tensor written (a packed file: its size). */
function workOf(layout: DataLayout): number {
  if (!layout.base) return layout.bytes;
  return layout.base.bytes + layout.writes.reduce((a, w) => a + w.tensor.byteLength, 0);
}

/** Permissions of a copied base: those of the input file, plus the owner's write bit (the file is patched). */
function writableMode(file: string): number {
  return (fs.statSync(file).mode & 0o777) | 0o200;
}

function checkBaseCopy(file: string, base: BaseCopy): void {
  const size = fs.statSync(file).size;
  if (size !== base.bytes) {
    throw new DeltacError('DELTAC_E_EXTERNAL_RANGE', `"${base.path}" changed size while it was copied (${base.bytes} → ${size} bytes)`);
  }
}

/** Writes the data file `file` (created here, exclusively) synchronously. */
export function writeDataFile(file: string, layout: DataLayout, options: WriteOptions = {}): void {
  const total = workOf(layout);
  let done = 0;
  if (layout.base) {
    fs.copyFileSync(layout.base.path, file, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    fs.chmodSync(file, writableMode(file));
    checkBaseCopy(file, layout.base);
    done = layout.base.bytes;
    options.onProgress?.(done, total);
  }
  const fd = fs.openSync(file, layout.base ? 'r+' : 'wx');
  const buffer = Buffer.allocUnsafe(PIECE);
  const sources = new Map<FileByteSource, number>();
  try {
    for (const piece of pieces(layout.writes)) {
      options.signal?.throwIfAborted();
      let data: Uint8Array;
      if ('file' in piece) {
        let src = sources.get(piece.file);
        if (src === undefined) sources.set(piece.file, (src = fs.openSync(piece.file.path, 'r')));
        let got = 0;
        while (got < piece.length) {
          const n = fs.readSync(src, buffer, got, piece.length - got, piece.offset + got);
          if (n === 0) throw shortRead(piece.file);
          got += n;
        }
        data = buffer.subarray(0, piece.length);
      } else if ('deferred' in piece) data = piece.deferred.bytes(buffer);
      else data = piece.bytes;
      for (let w = 0; w < data.length; ) w += fs.writeSync(fd, data, w, data.length - w, piece.dst + w);
      done += piece.length;
      options.onProgress?.(done, total);
    }
    fs.ftruncateSync(fd, layout.bytes);
    options.onProgress?.(total, total); // alignment gaps count as written
  } finally {
    for (const src of sources.values()) fs.closeSync(src);
    fs.closeSync(fd);
  }
}

/**
 * The same on libuv's thread pool: the base copy runs in the kernel (its progress
 * read from the file's growing size), and one writer writes the pieces in file order
 * while the next one is read or computed — behind the copy's front when the copy was
 * started early (`baseCopy`), else after it.
 */
export async function writeDataFileAsync(file: string, layout: DataLayout, options: WriteOptions = {}): Promise<void> {
  const total = workOf(layout);
  let done = 0;
  let front: CopyFront | undefined;
  if (layout.base && options.baseCopy) {
    front = new CopyFront(file, layout.base.bytes, options.baseCopy);
    await front.started();
    await fsp.chmod(file, writableMode(file)); // the copy took the input's permissions: the owner writes here too
  } else if (layout.base) {
    const base = layout.base;
    const poll = setInterval(() => {
      fsp.stat(file).then(
        (st) => options.onProgress?.(Math.min(st.size, base.bytes), total),
        () => {},
      );
    }, 250);
    try {
      await fsp.copyFile(base.path, file, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    } finally {
      clearInterval(poll);
    }
    options.signal?.throwIfAborted();
    await fsp.chmod(file, writableMode(file));
    checkBaseCopy(file, base);
    done = base.bytes;
    options.onProgress?.(done, total);
  }
  const out = await fsp.open(file, layout.base ? 'r+' : 'wx');
  const sources = new Map<FileByteSource, Promise<fsp.FileHandle>>();
  const buffers = [Buffer.allocUnsafe(PIECE), Buffer.allocUnsafe(PIECE)];
  let which = 0;
  const fill = async (piece: Piece): Promise<{ piece: Piece; data: Uint8Array }> => {
    if ('bytes' in piece) return { piece, data: piece.bytes };
    const buffer = buffers[(which ^= 1)]!;
    if ('deferred' in piece) return { piece, data: piece.deferred.bytes(buffer) };
    let src = sources.get(piece.file);
    if (!src) sources.set(piece.file, (src = fsp.open(piece.file.path, 'r')));
    const handle = await src;
    let got = 0;
    while (got < piece.length) {
      const { bytesRead } = await handle.read(buffer, got, piece.length - got, piece.offset + got);
      if (bytesRead === 0) throw shortRead(piece.file);
      got += bytesRead;
    }
    return { piece, data: buffer.subarray(0, piece.length) };
  };
  const all = pieces(layout.writes);
  let pending: Promise<{ piece: Piece; data: Uint8Array }> | null = null;
  let writing: Promise<void> | null = null;
  const write = async (data: Uint8Array, dst: number) => {
    for (let w = 0; w < data.length; ) w += (await out.write(data, w, data.length - w, dst + w)).bytesWritten;
  };
  try {
    const first = all.next();
    pending = first.done ? null : fill(first.value);
    while (pending) {
      const { piece, data } = await pending;
      pending = null;
      options.signal?.throwIfAborted();
      // The next piece is read (or computed) while this one is written; two buffers take turns.
      if (front) await front.reached(piece.dst + piece.length);
      writing = write(data, piece.dst);
      writing.catch(() => {}); // rethrown when awaited below
      const next = all.next();
      pending = next.done ? null : fill(next.value);
      pending?.catch(() => {});
      await writing;
      writing = null;
      done += piece.length;
      options.onProgress?.(done + (front?.copied ?? 0), total);
      // (pieces go in file order, each behind the copy's front: all below its end is final)
      options.written?.advance(piece.dst + piece.length);
    }
    if (front && layout.base) {
      await options.baseCopy;
      checkBaseCopy(file, layout.base);
    }
    await out.truncate(layout.bytes);
    options.onProgress?.(total, total);
    options.written?.advance(layout.bytes);
  } finally {
    options.written?.finish();
    await writing?.catch(() => {});
    await pending?.catch(() => {});
    for (const src of sources.values()) await src.then((h) => h.close(), () => {});
    await out.close();
  }
}

// ---- the file as planned ----------------------------------------------------------------

/**
 * The data file as the layout makes it, readable before (and while) it is written: a
 * written tensor's range from the tensor itself, the rest of a base copy from the base
 * file. Every range read is remembered, so that once the file is written `verify`
 * can show that each of them holds what was read: a check run on this view (in
 * parallel with the write) has then read the saved file.
 */
export class PlannedDataFile implements ByteSource {
  readonly description: string;
  private readonly starts: number[];
  private readonly base: FileByteSource | undefined;
  private readonly reads: [number, number][] = [];

  constructor(
    private readonly layout: DataLayout,
    description: string,
    /** The file being written and how far it is final: ranges below that are read from it (nothing left to verify). */
    private readonly written?: { file: string; extent: WrittenExtent },
  ) {
    this.description = description;
    this.starts = layout.writes.map((w) => w.offset);
    for (let i = 1; i < this.starts.length; i++) {
      if (this.starts[i]! < this.starts[i - 1]!) throw new Error('PlannedDataFile: writes out of order');
    }
    this.base = layout.base ? new FileByteSource(layout.base.path, layout.base.path) : undefined;
  }

  size(): number {
    return this.layout.bytes;
  }

  read(offset: number, length: number): Uint8Array {
    // (a source per read: the file grows while it is written, and a source keeps the size it saw first)
    if (this.written && offset + length <= this.written.extent.final) return new FileByteSource(this.written.file, this.description).read(offset, length);
    this.reads.push([offset, length]);
    return this.expected(offset, length);
  }

  /** Resolves once bytes [0, end) are in the file being written (then reading them reads the file). */
  whenWritten(end: number): Promise<void> {
    return this.written ? this.written.extent.whenFinal(end) : Promise.resolve();
  }

  /** The bytes [offset, offset + length) will hold. */
  private expected(offset: number, length: number, into?: Uint8Array): Uint8Array {
    // the last write starting at or before offset
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const w = found >= 0 ? this.layout.writes[found]! : undefined;
    if (w && offset + length <= w.offset + w.tensor.byteLength) {
      // a part of a tensor that lies in a file (a sample of it): read only that part
      const r = length < w.tensor.byteLength ? fileRange(w.tensor) : undefined;
      if (r) return r.file.read(r.offset + offset - w.offset, length);
      const b = w.tensor.bytes(into);
      return b.subarray(offset - w.offset, offset - w.offset + length);
    }
    if (this.base && offset + length <= this.layout.base!.bytes && !(w && offset < w.offset + w.tensor.byteLength)) return this.base.read(offset, length);
    throw new DeltacError('DELTAC_E_TENSOR_DATA', `bytes [${offset}, ${offset + length}) of "${this.description}" belong to no tensor`);
  }

  /** Compares every range read so far with `file` (the data file as written); the first that differs, or null. */
  verify(file: string): { offset: number; length: number } | null {
    const fd = fs.openSync(file, 'r');
    const scratch = Buffer.allocUnsafe(PIECE);
    let got = Buffer.allocUnsafe(PIECE);
    try {
      for (const [offset, length] of this.reads) {
        if (got.length < length) got = Buffer.allocUnsafe(length);
        const actual = got.subarray(0, length);
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, actual, done, length - done, offset + done);
          if (n === 0) return { offset, length };
          done += n;
        }
        const want = this.expected(offset, length, length <= scratch.length ? scratch : undefined);
        if (Buffer.compare(actual, Buffer.from(want.buffer, want.byteOffset, want.byteLength)) !== 0) return { offset, length };
      }
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }
}
