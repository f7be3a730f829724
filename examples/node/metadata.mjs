// The metadata of an ONNX model, where onnxtrain's export keeps what prediction needs: input_scale,
// onnxtrain.loss (how outputs are decided) and onnxtrain.token_ids (the inputs an Embedding reads).

// The string properties of an ONNX model (ModelProto.metadata_props, field 14: {key = 1, value = 2}), read with
// a minimal protobuf walk: onnxruntime-node's InferenceSession does not expose them.
export function onnxMetadata(bytes) {
  let pos = 0;
  const varint = (end) => {
    let value = 0;
    for (let shift = 0; pos < end; shift += 7) {
      const byte = bytes[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error("truncated protobuf varint");
  };
  const fields = (start, end, visit) => {
    pos = start;
    while (pos < end) {
      const tag = varint(end);
      const wireType = tag % 8;
      if (wireType === 0) varint(end);
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint(end);
        const at = pos;
        pos += length;
        visit(Math.floor(tag / 8), at, at + length);
      } else throw new Error(`unexpected protobuf wire type ${wireType}`);
      if (pos > end) throw new Error("truncated protobuf field");
    }
  };
  const metadata = {};
  fields(0, bytes.length, (field, start, end) => {
    if (field !== 14) return;
    const entry = {};
    const after = pos;
    fields(start, end, (inner, from, to) => {
      entry[inner] = bytes.toString("utf8", from, to);
    });
    pos = after;
    if (entry[1] !== undefined) metadata[entry[1]] = entry[2] ?? "";
  });
  return metadata;
}
