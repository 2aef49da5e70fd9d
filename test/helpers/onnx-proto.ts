/**
 * Hand-built ONNX protobufs for loader/saver tests: what a file says, written
 * field by field (camelCase names of onnx.proto, as protobufjs spells them), so
 * a test can produce exactly the encoding it wants to exercise.
 */
import fs from 'node:fs';
import { ModelProtoType } from '../../src/onnx/schema.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ProtoObject = Record<string, any>;

export const FLOAT = 1;
export const INT32 = 6;
export const INT64 = 7;
export const FLOAT16 = 10;
export const DOUBLE = 11;
export const UINT64 = 13;
export const BFLOAT16 = 16;

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ProtoObject {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface ModelSpec {
  nodes?: ProtoObject[];
  initializers?: ProtoObject[];
  inputs?: ProtoObject[];
  outputs?: ProtoObject[];
  valueInfo?: ProtoObject[];
  irVersion?: number;
  opset?: number;
  extra?: ProtoObject;
  graphExtra?: ProtoObject;
}

export function modelProto(spec: ModelSpec): ProtoObject {
  return {
    irVersion: spec.irVersion ?? 8,
    opsetImport: [{ version: spec.opset ?? 17 }], // default domain left unset, as torch writes it
    producerName: 'deltac-test',
    graph: {
      name: 'test',
      node: spec.nodes ?? [],
      initializer: spec.initializers ?? [],
      input: spec.inputs ?? [],
      output: spec.outputs ?? [],
      valueInfo: spec.valueInfo ?? [],
      ...spec.graphExtra,
    },
    ...spec.extra,
  };
}

export function encodeModel(proto: ProtoObject): Uint8Array {
  // fromObject (not verify) so int64 fields may be given as decimal strings
  return ModelProtoType.encode(ModelProtoType.fromObject(proto)).finish();
}

export function writeModel(file: string, spec: ModelSpec | ProtoObject): void {
  const proto = 'graph' in spec ? spec : modelProto(spec as ModelSpec);
  fs.writeFileSync(file, encodeModel(proto));
}

/** Decodes a saved file back to plain objects (longs as strings, bytes as Buffers). */
export function decodeFile(file: string): ProtoObject {
  const msg = ModelProtoType.decode(fs.readFileSync(file));
  return ModelProtoType.toObject(msg, { longs: String, bytes: Buffer, defaults: false }) as ProtoObject;
}

/** An initializer whose data lives in an external file. */
export function externalTensor(
  name: string,
  dataType: number,
  dims: number[],
  entries: Record<string, string>,
): ProtoObject {
  return {
    name,
    dataType,
    dims,
    dataLocation: 1,
    externalData: Object.entries(entries).map(([key, value]) => ({ key, value })),
  };
}

export function float32Bytes(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}
