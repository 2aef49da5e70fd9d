/** Types of values: tensors with (possibly symbolic) shapes, or other ONNX types kept opaque. */
import { DataType, dtypeName } from './dtype.js';

/** A dimension: a number, a symbol (`batch`, `height`), or null when unknown. */
export type Dim = number | string | null;

export type ValueType =
  | {
      kind: 'tensor';
      dtype: DataType;
      /** null when even the rank is unknown */
      shape: Dim[] | null;
      /** The file's TypeProto.denotation and per-dim denotations (kept only so that saving loses nothing). */
      denotation?: string;
      dimDenotations?: (string | null)[];
    }
  /** sequence / map / optional / sparse / opaque types, kept as their decoded TypeProto. */
  | { kind: 'opaque'; proto: unknown; summary: string };

export function tensorType(dtype: DataType, shape: Dim[] | null): ValueType {
  return { kind: 'tensor', dtype, shape };
}

export function formatDim(d: Dim): string {
  return d === null ? '?' : String(d);
}

export function formatType(t: ValueType | null): string {
  if (!t) return '?';
  if (t.kind === 'opaque') return t.summary;
  const shape = t.shape === null ? '*' : t.shape.map(formatDim).join(',');
  return `${dtypeName(t.dtype)}[${shape}]`;
}

export function sameType(a: ValueType | null, b: ValueType | null): boolean {
  return formatType(a) === formatType(b);
}

/** Number of elements when every dim is a number, else undefined. */
export function staticSize(shape: Dim[] | null): number | undefined {
  if (!shape) return undefined;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}
