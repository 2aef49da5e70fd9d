/**
 * The ONNX protobuf schema (onnx.proto of onnx 1.23: IR version 14, opset 28) as a
 * protobufjs reflection descriptor.
 *
 * Why not the `onnx-proto` package: its generated code predates IR 10 and has no
 * `NodeProto.metadata_props`, `overload`, device configurations or the float8/int4/
 * float4/int2 data types, so a model decoded with it and saved again silently loses
 * fields (dynamo exports keep module paths in `metadata_props`). This descriptor
 * lists every field of the current schema, so decode → encode keeps them all. IR 12
 * (FLOAT8E8M0) and 13 (UINT2/INT2) added data types, plain int32 fields here; the
 * conformance suite checks that every file of onnx 1.23.1's node tests (IR up to 14)
 * decodes and re-encodes to the same bytes, i.e. uses no field missing here.
 */
import protobuf from 'protobufjs';

type Fields = Record<string, { type: string; id: number; rule?: 'repeated'; options?: { packed: boolean } }>;

const opt = (type: string, id: number) => ({ type, id });
const rep = (type: string, id: number) => ({ type, id, rule: 'repeated' as const });
/** proto2 repeated scalars are unpacked on the wire unless declared [packed = true]. */
const packed = (type: string, id: number) => ({ type, id, rule: 'repeated' as const, options: { packed: true } });
const unpacked = (type: string, id: number) => ({ type, id, rule: 'repeated' as const, options: { packed: false } });

function message(fields: Fields, nested?: Record<string, unknown>, oneofs?: Record<string, { oneof: string[] }>) {
  return { fields, ...(nested ? { nested } : {}), ...(oneofs ? { oneofs } : {}) };
}

const descriptor = {
  options: { syntax: 'proto2' },
  nested: {
    onnx: {
      nested: {
        AttributeProto: message(
          {
            name: opt('string', 1),
            refAttrName: opt('string', 21),
            docString: opt('string', 13),
            type: opt('AttributeType', 20),
            f: opt('float', 2),
            i: opt('int64', 3),
            s: opt('bytes', 4),
            t: opt('TensorProto', 5),
            g: opt('GraphProto', 6),
            sparseTensor: opt('SparseTensorProto', 22),
            tp: opt('TypeProto', 14),
            floats: unpacked('float', 7),
            ints: unpacked('int64', 8),
            strings: rep('bytes', 9),
            tensors: rep('TensorProto', 10),
            graphs: rep('GraphProto', 11),
            sparseTensors: rep('SparseTensorProto', 23),
            typeProtos: rep('TypeProto', 15),
          },
          {
            AttributeType: {
              values: {
                UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, SPARSE_TENSOR: 11, TYPE_PROTO: 13,
                FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10, SPARSE_TENSORS: 12, TYPE_PROTOS: 14,
              },
            },
          },
        ),
        ValueInfoProto: message({
          name: opt('string', 1),
          type: opt('TypeProto', 2),
          docString: opt('string', 3),
          metadataProps: rep('StringStringEntryProto', 4),
        }),
        NodeProto: message({
          input: rep('string', 1),
          output: rep('string', 2),
          name: opt('string', 3),
          opType: opt('string', 4),
          domain: opt('string', 7),
          overload: opt('string', 8),
          attribute: rep('AttributeProto', 5),
          docString: opt('string', 6),
          metadataProps: rep('StringStringEntryProto', 9),
          deviceConfigurations: rep('NodeDeviceConfigurationProto', 10),
        }),
        IntIntListEntryProto: message({ key: opt('int64', 1), value: unpacked('int64', 2) }),
        NodeDeviceConfigurationProto: message({
          configurationId: opt('string', 1),
          shardingSpec: rep('ShardingSpecProto', 2),
          pipelineStage: opt('int32', 3),
        }),
        ShardingSpecProto: message({
          tensorName: opt('string', 1),
          device: unpacked('int64', 2),
          indexToDeviceGroupMap: rep('IntIntListEntryProto', 3),
          shardedDim: rep('ShardedDimProto', 4),
        }),
        ShardedDimProto: message({ axis: opt('int64', 1), simpleSharding: rep('SimpleShardedDimProto', 2) }),
        SimpleShardedDimProto: message(
          { dimValue: opt('int64', 1), dimParam: opt('string', 2), numShards: opt('int64', 3) },
          undefined,
          { dim: { oneof: ['dimValue', 'dimParam'] } },
        ),
        TrainingInfoProto: message({
          initialization: opt('GraphProto', 1),
          algorithm: opt('GraphProto', 2),
          initializationBinding: rep('StringStringEntryProto', 3),
          updateBinding: rep('StringStringEntryProto', 4),
        }),
        ModelProto: message({
          irVersion: opt('int64', 1),
          opsetImport: rep('OperatorSetIdProto', 8),
          producerName: opt('string', 2),
          producerVersion: opt('string', 3),
          domain: opt('string', 4),
          modelVersion: opt('int64', 5),
          docString: opt('string', 6),
          graph: opt('GraphProto', 7),
          metadataProps: rep('StringStringEntryProto', 14),
          trainingInfo: rep('TrainingInfoProto', 20),
          functions: rep('FunctionProto', 25),
          configuration: rep('DeviceConfigurationProto', 26),
        }),
        DeviceConfigurationProto: message({
          name: opt('string', 1),
          numDevices: opt('int32', 2),
          device: rep('string', 3),
        }),
        StringStringEntryProto: message({ key: opt('string', 1), value: opt('string', 2) }),
        TensorAnnotation: message({
          tensorName: opt('string', 1),
          quantParameterTensorNames: rep('StringStringEntryProto', 2),
        }),
        GraphProto: message({
          node: rep('NodeProto', 1),
          name: opt('string', 2),
          initializer: rep('TensorProto', 5),
          sparseInitializer: rep('SparseTensorProto', 15),
          docString: opt('string', 10),
          input: rep('ValueInfoProto', 11),
          output: rep('ValueInfoProto', 12),
          valueInfo: rep('ValueInfoProto', 13),
          quantizationAnnotation: rep('TensorAnnotation', 14),
          metadataProps: rep('StringStringEntryProto', 16),
        }),
        TensorProto: message(
          {
            dims: unpacked('int64', 1),
            dataType: opt('int32', 2),
            segment: opt('Segment', 3),
            floatData: packed('float', 4),
            int32Data: packed('int32', 5),
            stringData: rep('bytes', 6),
            int64Data: packed('int64', 7),
            name: opt('string', 8),
            docString: opt('string', 12),
            rawData: opt('bytes', 9),
            externalData: rep('StringStringEntryProto', 13),
            dataLocation: opt('DataLocation', 14),
            doubleData: packed('double', 10),
            uint64Data: packed('uint64', 11),
            metadataProps: rep('StringStringEntryProto', 16),
          },
          {
            Segment: message({ begin: opt('int64', 1), end: opt('int64', 2) }),
            DataLocation: { values: { DEFAULT: 0, EXTERNAL: 1 } },
          },
        ),
        SparseTensorProto: message({
          values: opt('TensorProto', 1),
          indices: opt('TensorProto', 2),
          dims: unpacked('int64', 3),
        }),
        TensorShapeProto: message(
          { dim: rep('Dimension', 1) },
          {
            Dimension: message(
              { dimValue: opt('int64', 1), dimParam: opt('string', 2), denotation: opt('string', 3) },
              undefined,
              { value: { oneof: ['dimValue', 'dimParam'] } },
            ),
          },
        ),
        TypeProto: message(
          {
            tensorType: opt('Tensor', 1),
            sequenceType: opt('Sequence', 4),
            mapType: opt('Map', 5),
            optionalType: opt('Optional', 9),
            sparseTensorType: opt('SparseTensor', 8),
            opaqueType: opt('Opaque', 7),
            denotation: opt('string', 6),
          },
          {
            Tensor: message({ elemType: opt('int32', 1), shape: opt('TensorShapeProto', 2) }),
            Sequence: message({ elemType: opt('TypeProto', 1) }),
            Map: message({ keyType: opt('int32', 1), valueType: opt('TypeProto', 2) }),
            Optional: message({ elemType: opt('TypeProto', 1) }),
            SparseTensor: message({ elemType: opt('int32', 1), shape: opt('TensorShapeProto', 2) }),
            Opaque: message({ domain: opt('string', 1), name: opt('string', 2) }),
          },
          {
            value: {
              oneof: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType', 'opaqueType'],
            },
          },
        ),
        OperatorSetIdProto: message({ domain: opt('string', 1), version: opt('int64', 2) }),
        FunctionProto: message({
          name: opt('string', 1),
          input: rep('string', 4),
          output: rep('string', 5),
          attribute: rep('string', 6),
          attributeProto: rep('AttributeProto', 11),
          node: rep('NodeProto', 7),
          docString: opt('string', 8),
          opsetImport: rep('OperatorSetIdProto', 9),
          domain: opt('string', 10),
          overload: opt('string', 13),
          valueInfo: rep('ValueInfoProto', 12),
          metadataProps: rep('StringStringEntryProto', 14),
        }),
      },
    },
  },
};

/** The newest IR version this schema describes; files declaring a newer one load with a warning. */
export const SCHEMA_IR_VERSION = 14;

const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

export const ModelProtoType = root.lookupType('onnx.ModelProto');
export const GraphProtoType = root.lookupType('onnx.GraphProto');
export const TensorProtoType = root.lookupType('onnx.TensorProto');
export const NodeProtoType = root.lookupType('onnx.NodeProto');
