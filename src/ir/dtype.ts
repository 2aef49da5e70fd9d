/** ONNX element types (TensorProto.DataType) with their short names and sizes. */

export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
  FLOAT8E8M0 = 24,
  UINT2 = 25,
  INT2 = 26,
}

interface DTypeInfo {
  /** Short name used by the textual IR (`f32`, `bf16`, `i64` …). */
  short: string;
  /** Bits per element; 0 for strings. */
  bits: number;
}

const INFO: Record<number, DTypeInfo> = {
  [DataType.UNDEFINED]: { short: 'undef', bits: 0 },
  [DataType.FLOAT]: { short: 'f32', bits: 32 },
  [DataType.UINT8]: { short: 'u8', bits: 8 },
  [DataType.INT8]: { short: 'i8', bits: 8 },
  [DataType.UINT16]: { short: 'u16', bits: 16 },
  [DataType.INT16]: { short: 'i16', bits: 16 },
  [DataType.INT32]: { short: 'i32', bits: 32 },
  [DataType.INT64]: { short: 'i64', bits: 64 },
  [DataType.STRING]: { short: 'str', bits: 0 },
  [DataType.BOOL]: { short: 'bool', bits: 8 },
  [DataType.FLOAT16]: { short: 'f16', bits: 16 },
  [DataType.DOUBLE]: { short: 'f64', bits: 64 },
  [DataType.UINT32]: { short: 'u32', bits: 32 },
  [DataType.UINT64]: { short: 'u64', bits: 64 },
  [DataType.COMPLEX64]: { short: 'c64', bits: 64 },
  [DataType.COMPLEX128]: { short: 'c128', bits: 128 },
  [DataType.BFLOAT16]: { short: 'bf16', bits: 16 },
  [DataType.FLOAT8E4M3FN]: { short: 'f8e4m3fn', bits: 8 },
  [DataType.FLOAT8E4M3FNUZ]: { short: 'f8e4m3fnuz', bits: 8 },
  [DataType.FLOAT8E5M2]: { short: 'f8e5m2', bits: 8 },
  [DataType.FLOAT8E5M2FNUZ]: { short: 'f8e5m2fnuz', bits: 8 },
  [DataType.UINT4]: { short: 'u4', bits: 4 },
  [DataType.INT4]: { short: 'i4', bits: 4 },
  [DataType.FLOAT4E2M1]: { short: 'f4e2m1', bits: 4 },
  [DataType.FLOAT8E8M0]: { short: 'f8e8m0', bits: 8 },
  [DataType.UINT2]: { short: 'u2', bits: 2 },
  [DataType.INT2]: { short: 'i2', bits: 2 },
};

const BY_SHORT = new Map(Object.entries(INFO).map(([k, v]) => [v.short, Number(k) as DataType]));

export function isKnownDataType(dt: number): dt is DataType {
  return Object.prototype.hasOwnProperty.call(INFO, dt);
}

export function dtypeName(dt: DataType | number): string {
  return INFO[dt]?.short ?? `dtype${dt}`;
}

export function dtypeFromName(name: string): DataType | undefined {
  const known = BY_SHORT.get(name);
  if (known !== undefined) return known;
  const m = /^dtype(\d+)$/.exec(name);
  return m ? (Number(m[1]) as DataType) : undefined;
}

export function dtypeBits(dt: DataType): number {
  return INFO[dt]?.bits ?? 0;
}

/** Bytes that `count` elements occupy in raw_data (sub-byte types are packed, rounded up). */
export function byteSizeOf(dt: DataType, count: number): number {
  return Math.ceil((count * dtypeBits(dt)) / 8);
}

export function isFloatType(dt: DataType): boolean {
  return dt === DataType.FLOAT || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16 || dt === DataType.DOUBLE;
}
