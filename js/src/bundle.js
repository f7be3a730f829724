// Reads a training bundle (onnxtrain.bundle in Python): bundle.json, the three ONNX files and state.bin, from a
// URL (fetch) or, under Node.js, a folder path; and packs a trainer's state back into state.bin's layout.

export const FORMAT = "onnxtrain.training_bundle/1";

/**
 * @typedef {import("./index.js").BundleMetadata} BundleMetadata
 * @typedef {import("./index.js").TensorEntry} TensorEntry
 * @typedef {import("./index.js").BundleSource} BundleSource
 * @typedef {{metadata: BundleMetadata, trainStep: Uint8Array, evaluation: Uint8Array, model: Uint8Array,
 *            state: Uint8Array}} BundleFiles
 */

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

/**
 * A function that reads one file of the bundle at `source`.
 * @param {BundleSource} source a URL or (Node.js) folder path, or {read(name)} returning the file's bytes
 * @returns {(name: string) => Promise<Uint8Array>}
 */
function reader(source) {
  if (typeof source === "object" && source !== null && typeof source.read === "function") {
    return async (name) => new Uint8Array(await source.read(name));
  }
  const text = String(source);
  const isUrl = source instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || !isNode;
  if (isUrl) {
    const base = new URL(text.endsWith("/") ? text : `${text}/`, globalThis.location?.href);
    return async (name) => {
      const url = new URL(name, base);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`fetching ${url} failed: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    };
  }
  return async (name) => {
    const { readFile } = await import("node:fs/promises");
    const { join } = await import("node:path");
    return new Uint8Array(await readFile(join(text, name)));
  };
}

/**
 * Read every file of a bundle.
 * @param {BundleSource} source
 * @returns {Promise<BundleFiles>}
 * @throws {Error} bundle.json is not a bundle's of this format
 */
export async function readBundle(source) {
  const read = reader(source);
  const metadata = JSON.parse(new TextDecoder().decode(await read("bundle.json")));
  if (metadata.format !== FORMAT) {
    throw new Error(`bundle.json at ${String(source)} expects format ${FORMAT}; received ${metadata.format}`);
  }
  const files = metadata.files;
  const [trainStep, evaluation, model, state] = await Promise.all(
    [files.train_step, files.eval, files.model, files.state].map(read),
  );
  return { metadata, trainStep, evaluation, model, state };
}

/**
 * The tensors state.bin holds, as typed arrays of their own (copies), by name.
 * @param {Uint8Array} bytes
 * @param {TensorEntry[]} index bundle.json's "tensors"
 * @returns {Map<string, Float32Array | BigInt64Array>}
 */
export function unpackState(bytes, index) {
  const tensors = new Map();
  for (const entry of index) {
    const count = entry.shape.reduce((n, d) => n * d, 1);
    const size = entry.dtype === "int64" ? 8 : entry.dtype === "float32" ? 4 : 0;
    if (size === 0) throw new Error(`state tensor ${entry.name} expects float32 or int64; received ${entry.dtype}`);
    const end = entry.offset + count * size;
    if (end > bytes.length) {
      throw new Error(`state tensor ${entry.name} expects bytes ${entry.offset}..${end}; the state has ${bytes.length}`);
    }
    const copy = bytes.slice(entry.offset, end); // its own, aligned buffer
    const view = new DataView(copy.buffer);
    const values = size === 8 ? new BigInt64Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) {
      values[i] = size === 8 ? view.getBigInt64(i * 8, true) : view.getFloat32(i * 4, true);
    }
    tensors.set(entry.name, values);
  }
  return tensors;
}

/**
 * state.bin's bytes for `tensors`, in the layout `index` gives.
 * @param {Map<string, Float32Array | BigInt64Array>} tensors
 * @param {TensorEntry[]} index
 * @returns {Uint8Array}
 */
export function packState(tensors, index) {
  const sizeOf = (entry) => entry.shape.reduce((n, d) => n * d, 1) * (entry.dtype === "int64" ? 8 : 4);
  const total = Math.max(0, ...index.map((entry) => entry.offset + sizeOf(entry)));
  const out = new Uint8Array(total + (-total & 7));
  const view = new DataView(out.buffer);
  for (const entry of index) {
    const values = tensors.get(entry.name);
    if (values === undefined) throw new Error(`the state has no tensor ${entry.name}`);
    for (let i = 0; i < values.length; i++) {
      if (entry.dtype === "int64") view.setBigInt64(entry.offset + i * 8, BigInt(values[i]), true);
      else view.setFloat32(entry.offset + i * 4, Number(values[i]), true);
    }
  }
  return out;
}
