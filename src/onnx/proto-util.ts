/** Small helpers for working with protobufjs-decoded messages. */

/** A decoded protobuf message (protobufjs reflection objects are untyped). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type P = any;

/** int64 fields decode as Long objects (or numbers); deltac uses numbers (exact below 2^53). */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v ?? 0);
}
