// Reading a .npy file (numpy's format: C or Fortran order) into {shape, descr, data}, as np.load reads it.
import { readFileSync } from "node:fs";

export function readNpy(path) {
  const bytes = readFileSync(path);
  if (bytes.toString("latin1", 0, 6) !== "\x93NUMPY") throw new Error(`${path} is not a .npy file`);
  const major = bytes[6];
  const headerStart = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const header = bytes.toString("latin1", headerStart, headerStart + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((d) => d.trim()).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = bytes.byteOffset + headerStart + headerLength;
  const types = {
    "<f4": [Float32Array, 4],
    "<f8": [Float64Array, 8],
    "|u1": [Uint8Array, 1],
    "|i1": [Int8Array, 1],
    "<u2": [Uint16Array, 2],
    "<i2": [Int16Array, 2],
    "<u4": [Uint32Array, 4],
    "<i4": [Int32Array, 4],
    "<i8": [BigInt64Array, 8],
  };
  if (!(descr in types)) {
    throw new Error(`${path}: dtype ${descr} is not supported; save float32, float64, integer pixels, or int64/int32 token ids`);
  }
  const [Type, size] = types[descr];
  if (bytes.length < headerStart + headerLength + size * count) {
    throw new Error(`${path} is truncated: its header says shape (${shape}) of ${descr}, ${size * count} bytes`);
  }
  const data = new Type(bytes.buffer.slice(start, start + size * count));
  return { shape, descr, data: fortran ? fortranToC(data, shape) : data };
}

// The values of a Fortran-ordered (column-major) array in C (row-major) order, as numpy's np.load hands them to
// Python: the first index varies fastest in `values`, the last fastest in the result.
function fortranToC(values, shape) {
  if (shape.length < 2) return values;
  const strides = [];
  let stride = 1;
  for (const d of shape) {
    strides.push(stride);
    stride *= d;
  }
  const out = new values.constructor(values.length);
  const index = new Array(shape.length).fill(0);
  let from = 0; // the Fortran offset of `index`, kept up to date as it counts in C order
  for (let i = 0; i < out.length; i++) {
    out[i] = values[from];
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++index[k] < shape[k]) {
        from += strides[k];
        break;
      }
      from -= (shape[k] - 1) * strides[k];
      index[k] = 0;
    }
  }
  return out;
}
