// Writes trained weights into an ONNX ModelProto: just enough protobuf to find the graph's initializers
// (ModelProto.graph = 7, GraphProto.initializer = 5) and give each one new raw_data (TensorProto field 9). Every
// other field is copied byte for byte, so the model keeps its metadata, opsets and nodes.

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const VALUE_INFO_NAME = 1;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_DATA_LOCATION = 14;
const FLOAT = 1;

/**
 * @typedef {{number: number, wire: number, start: number, end: number, valueStart: number, valueEnd: number}} Field
 */

/**
 * Read a varint at `offset`.
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @returns {[number, number]} the value and the offset after it
 */
function readVarint(bytes, offset) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (offset >= bytes.length) throw new Error(`truncated varint at byte ${offset}`);
    const byte = bytes[offset++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, offset];
    scale *= 128;
  }
}

/**
 * @param {number} value a non-negative integer below 2**53
 * @returns {number[]}
 */
function varint(value) {
  const out = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/**
 * The top-level fields of a protobuf message, in order.
 * @param {Uint8Array} bytes
 * @returns {Field[]}
 */
export function parseFields(bytes) {
  const fields = [];
  let offset = 0;
  while (offset < bytes.length) {
    const start = offset;
    let key;
    [key, offset] = readVarint(bytes, offset);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    let valueStart = offset;
    if (wire === 0) {
      [, offset] = readVarint(bytes, offset);
    } else if (wire === 1) {
      offset += 8;
    } else if (wire === 5) {
      offset += 4;
    } else if (wire === 2) {
      let length;
      [length, valueStart] = readVarint(bytes, offset);
      offset = valueStart + length;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire} (field ${number}) at byte ${start}`);
    }
    if (offset > bytes.length) throw new Error(`field ${number} at byte ${start} runs past the end of the message`);
    fields.push({ number, wire, start, end: offset, valueStart, valueEnd: offset });
  }
  return fields;
}

/**
 * A length-delimited field `number` holding `value`.
 * @param {number} number
 * @param {Uint8Array} value
 * @returns {Uint8Array}
 */
function lengthDelimited(number, value) {
  const head = [...varint(number * 8 + 2), ...varint(value.length)];
  const out = new Uint8Array(head.length + value.length);
  out.set(head, 0);
  out.set(value, head.length);
  return out;
}

/**
 * @param {Uint8Array[]} parts
 * @returns {Uint8Array}
 */
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Name, element type and dimensions of a TensorProto.
 * @param {Uint8Array} bytes
 * @param {Field[]} fields
 */
function describeTensor(bytes, fields) {
  let name = "";
  let dataType = 0;
  let external = false;
  const dims = [];
  for (const f of fields) {
    if (f.number === TENSOR_NAME && f.wire === 2) {
      name = new TextDecoder().decode(bytes.subarray(f.valueStart, f.valueEnd));
    } else if (f.number === TENSOR_DATA_TYPE && f.wire === 0) {
      [dataType] = readVarint(bytes, f.valueStart);
    } else if (f.number === TENSOR_DATA_LOCATION && f.wire === 0) {
      external = readVarint(bytes, f.valueStart)[0] === 1;
    } else if (f.number === TENSOR_DIMS && f.wire === 0) {
      dims.push(readVarint(bytes, f.valueStart)[0]);
    } else if (f.number === TENSOR_DIMS && f.wire === 2) {
      for (let at = f.valueStart; at < f.valueEnd; ) {
        let dim;
        [dim, at] = readVarint(bytes, at);
        dims.push(dim);
      }
    }
  }
  return { name, dataType, dims, external };
}

/**
 * The little-endian bytes of `values`.
 * @param {Float32Array} values
 * @returns {Uint8Array}
 */
function float32Bytes(values) {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

/**
 * A TensorProto like `bytes`, its data replaced by its entry in `weights` as raw_data.
 * @param {Uint8Array} bytes
 * @param {Map<string, Float32Array>} weights by initializer name
 * @returns {{tensor: Uint8Array, name: string} | null} null when it is not one of `weights`
 */
function patchTensor(bytes, weights) {
  const fields = parseFields(bytes);
  const { name, dataType, dims, external } = describeTensor(bytes, fields);
  const values = weights.get(name);
  if (values === undefined) return null;
  const count = dims.reduce((n, d) => n * d, 1);
  if (dataType !== FLOAT || external) {
    throw new Error(`initializer ${name} expects float32 data inside the model; it has data_type ${dataType}`);
  }
  if (values.length !== count) {
    throw new Error(`initializer ${name} has ${count} values (dims [${dims}]); received ${values.length}`);
  }
  const kept = fields
    .filter((f) => f.number !== TENSOR_RAW_DATA && f.number !== TENSOR_FLOAT_DATA)
    .map((f) => bytes.subarray(f.start, f.end));
  return { tensor: concat([...kept, lengthDelimited(TENSOR_RAW_DATA, float32Bytes(values))]), name };
}

/**
 * The serialized ModelProto `model` with the initializers named in `weights` holding the given values.
 *
 * @param {Uint8Array} model a serialized ModelProto whose initializers keep their data inside it
 * @param {Map<string, Float32Array> | Record<string, Float32Array>} weights by initializer name
 * @returns {Uint8Array}
 * @throws {Error} a named initializer is missing, not float32, or of another size
 */
export function writeInitializers(model, weights) {
  const wanted = weights instanceof Map ? weights : new Map(Object.entries(weights));
  const written = new Set();
  const patchGraph = (graph) => {
    const parts = parseFields(graph).map((f) => {
      const whole = graph.subarray(f.start, f.end);
      if (f.number !== GRAPH_INITIALIZER || f.wire !== 2) return whole;
      const patched = patchTensor(graph.subarray(f.valueStart, f.valueEnd), wanted);
      if (patched === null) return whole;
      written.add(patched.name);
      return lengthDelimited(GRAPH_INITIALIZER, patched.tensor);
    });
    return concat(parts);
  };
  const parts = parseFields(model).map((f) =>
    f.number === MODEL_GRAPH && f.wire === 2
      ? lengthDelimited(MODEL_GRAPH, patchGraph(model.subarray(f.valueStart, f.valueEnd)))
      : model.subarray(f.start, f.end),
  );
  const missing = [...wanted.keys()].filter((name) => !written.has(name));
  if (missing.length > 0) throw new Error(`the model has no initializer named ${missing.join(", ")}`);
  return concat(parts);
}

/**
 * The float32 initializers of a serialized ModelProto by name (raw_data or float_data), for checks.
 * @param {Uint8Array} model
 * @returns {Map<string, Float32Array>}
 */
export function readInitializers(model) {
  const out = new Map();
  for (const f of parseFields(model)) {
    if (f.number !== MODEL_GRAPH || f.wire !== 2) continue;
    const graph = model.subarray(f.valueStart, f.valueEnd);
    for (const g of parseFields(graph)) {
      if (g.number !== GRAPH_INITIALIZER || g.wire !== 2) continue;
      const bytes = graph.subarray(g.valueStart, g.valueEnd);
      const fields = parseFields(bytes);
      const { name, dataType } = describeTensor(bytes, fields);
      if (dataType !== FLOAT) continue;
      const raw = fields.find((t) => t.number === TENSOR_RAW_DATA);
      const packed = fields.find((t) => t.number === TENSOR_FLOAT_DATA && t.wire === 2);
      const data = raw ?? packed;
      if (data === undefined) continue;
      const copy = bytes.slice(data.valueStart, data.valueEnd);
      const view = new DataView(copy.buffer);
      const values = new Float32Array(copy.length / 4);
      for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
      out.set(name, values);
    }
  }
  return out;
}

/**
 * The output names of a serialized ModelProto's graph.
 * @param {Uint8Array} model
 * @returns {string[]}
 */
export function graphOutputNames(model) {
  const names = [];
  for (const f of parseFields(model)) {
    if (f.number !== MODEL_GRAPH || f.wire !== 2) continue;
    const graph = model.subarray(f.valueStart, f.valueEnd);
    for (const g of parseFields(graph)) {
      if (g.number !== GRAPH_OUTPUT || g.wire !== 2) continue;
      const info = graph.subarray(g.valueStart, g.valueEnd);
      const name = parseFields(info).find((v) => v.number === VALUE_INFO_NAME && v.wire === 2);
      if (name !== undefined) names.push(new TextDecoder().decode(info.subarray(name.valueStart, name.valueEnd)));
    }
  }
  return names;
}
