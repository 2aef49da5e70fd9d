/**
 * Field-by-field comparison of two serialized ModelProtos, as plain objects decoded
 * with deltac's schema. Empty strings, empty bytes and empty lists count as absent
 * (protobuf cannot tell them apart from unset fields on the wire either); floats
 * compare by identity, so NaN equals NaN and 0 differs from -0.
 */
import { ModelProtoType } from '../../src/onnx/schema.js';

type Plain = null | boolean | number | string | Plain[] | { [field: string]: Plain };

/** The message as a plain object: int64 as decimal strings, bytes as base64, enums as numbers. */
export function protoObject(bytes: Uint8Array): Plain {
  const message = ModelProtoType.decode(bytes);
  return ModelProtoType.toObject(message, { longs: String, bytes: String, enums: Number, defaults: false }) as Plain;
}

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
}

/** The path and values of the first field where `a` and `b` differ, or undefined when they are the same message. */
export function firstDifference(a: Plain, b: Plain, at = 'model'): string | undefined {
  if (isAbsent(a) && isAbsent(b)) return undefined;
  const show = (v: Plain) => (isAbsent(v) ? '(absent)' : JSON.stringify(v)?.slice(0, 120));
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}: ${a.length} entries vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i]!, b[i]!, `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const d = firstDifference(a[key] ?? null, b[key] ?? null, `${at}.${key}`);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(a, b) ? undefined : `${at}: ${show(a)} vs ${show(b)}`;
}
