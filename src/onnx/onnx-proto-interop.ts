/**
 * Interop with programs that already hold an ONNX `ModelProto` object from another
 * protobuf library — the `onnx-proto` package, or any protobufjs-generated onnx.proto —
 * through the wire format, so deltac depends on none of them:
 *
 *   import { onnx } from 'onnx-proto';
 *   const model = fromOnnxProto(proto, onnx.ModelProto);          // their object → deltac Model
 *   const { proto, lost } = toOnnxProto(model, onnx.ModelProto);
 *
 * `fromOnnxProto` keeps everything the object holds. `toOnnxProto` is only as complete as
 * the target schema: onnx-proto 8.0.1 predates IR 10 and has no `NodeProto.metadata_props`
 * (where dynamo exports keep module paths), `overload` or the float8/int4/float4 types, so
 * its decoder drops them. `lost` lists the fields the target schema could not hold (the
 * object is re-encoded, decoded with deltac's full schema and compared field by field),
 * e.g. `graph.node[].metadataProps`; empty means nothing was lost.
 */
import path from 'node:path';
import type { Model } from '../ir/model.js';
import { decodeModel, type LoadOptions } from './load.js';
import { serializeModel } from './save.js';
import { ModelProtoType } from './schema.js';

/** What a protobufjs-generated message class offers (onnx-proto's `onnx.ModelProto` is one). */
export interface ProtoCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

export interface FromOnnxProtoOptions extends LoadOptions {
  /** Folder external-data locations are relative to (default: the working directory). */
  baseDir?: string;
}

/** A deltac `Model` from another library's ModelProto object. */
export function fromOnnxProto<T>(proto: T, codec: ProtoCodec<T>, options: FromOnnxProtoOptions = {}): Model {
  const bytes = codec.encode(proto).finish();
  return decodeModel(bytes, path.resolve(options.baseDir ?? '.'), options, 'ModelProto object').model;
}

export interface ToOnnxProtoResult<T> {
  proto: T;
  /** Field paths (`graph.node[].metadataProps`) the target schema could not hold; empty: lossless. */
  lost: string[];
}

/** The model as another library's ModelProto object, with the fields its schema dropped. */
export function toOnnxProto<T>(model: Model, codec: ProtoCodec<T>): ToOnnxProtoResult<T> {
  const bytes = serializeModel(model);
  const proto = codec.decode(bytes);
  const asObject = (b: Uint8Array) => ModelProtoType.toObject(ModelProtoType.decode(b), { longs: String, bytes: String });
  const lost = new Set<string>();
  lostFields(asObject(bytes), asObject(codec.encode(proto).finish()), '', lost);
  return { proto, lost: [...lost] };
}

/** Paths of the fields of `before` that `after` lacks or holds differently (array indices folded to `[]`). */
function lostFields(before: unknown, after: unknown, at: string, lost: Set<string>): void {
  if (Array.isArray(before)) {
    const other = Array.isArray(after) ? after : [];
    before.forEach((v, i) => lostFields(v, other[i], `${at}[]`, lost));
    return;
  }
  if (before !== null && typeof before === 'object') {
    const other = (after !== null && typeof after === 'object' ? after : {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(before)) {
      const field = at ? `${at}.${k}` : k;
      if (other[k] === undefined) lost.add(field);
      else lostFields(v, other[k], field, lost);
    }
    return;
  }
  if (before !== after) lost.add(at);
}
