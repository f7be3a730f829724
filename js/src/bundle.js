// Reads a training bundle (onnxtrain.bundle in Python): bundle.json, the three ONNX files and state.bin, from a
// URL (fetch) or, under Node.js, a folder path or file: URL; and reads and packs a trainer's state in state.bin's
// layout (plus stateBytes' trailer); checks that the sessions opened on its graphs are the ones bundle.json names.

import { describe } from "./inputs.js";

export const FORMAT = "onnxtrain.training_bundle/1";

/**
 * @typedef {import("./index.js").BundleMetadata} BundleMetadata
 * @typedef {import("./index.js").TensorEntry} TensorEntry
 * @typedef {import("./index.js").BundleSource} BundleSource
 * @typedef {{metadata: BundleMetadata, trainStep: Uint8Array, evaluation: Uint8Array, model: Uint8Array,
 *            state: Uint8Array, where: (name: string) => string}} BundleFiles
 */

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

const NOT_A_BUNDLE =
  "Trainer.load expects a training bundle folder (bundle.json, train_step.onnx, eval.onnx, model.onnx, " +
  "state.bin); a saved model folder (config.json, model.onnx) is not one. Write the bundle with " +
  "`onnxtrain bundle MODEL_DIR BUNDLE_DIR` or model.export_training_bundle(dir)";

/**
 * How to read the bundle's files at `source`: read(name) gives a file's bytes, where(name) its path or URL.
 * @param {BundleSource} source a URL (file: URLs in Node.js too), a folder path (Node.js), or {read(name)}
 * @returns {Promise<{read: (name: string) => Promise<Uint8Array>, where: (name: string) => string}>}
 */
async function reader(source) {
  if (typeof source === "object" && source !== null && typeof source.read === "function") {
    return { read: async (name) => new Uint8Array(await source.read(name)), where: (name) => name };
  }
  if (!(source instanceof URL) && typeof source !== "string") {
    throw new TypeError(`Trainer.load expects a URL, a folder path or {read(name)} as source. Received: ${describe(source)}`);
  }
  const text = String(source);
  if (isNode && /^file:/i.test(text)) return folderReader((await import("node:url")).fileURLToPath(text));
  if (isNode && !(source instanceof URL) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return folderReader(text);
  const base = new URL(text.endsWith("/") ? text : `${text}/`, globalThis.location?.href);
  const where = (name) => String(new URL(name, base));
  const read = async (name) => {
    let response;
    try {
      response = await fetch(where(name));
    } catch (e) {
      throw new Error(`fetching ${where(name)} failed: ${e.message}`, { cause: e });
    }
    if (!response.ok) {
      const hint = name === "bundle.json" && response.status === 404 ? `. ${NOT_A_BUNDLE}` : "";
      throw new Error(`fetching ${where(name)} failed: HTTP ${response.status}${hint}`);
    }
    return new Uint8Array(await response.arrayBuffer());
  };
  return { read, where };
}

/** Node.js: a reader of the files in `folder`, whose errors say which file and what a bundle folder holds. */
async function folderReader(folder) {
  const { readFile } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const where = (name) => join(folder, name);
  const read = async (name) => {
    try {
      return new Uint8Array(await readFile(where(name)));
    } catch (e) {
      if (name === "bundle.json" && e.code === "ENOTDIR") {
        throw new Error(`Trainer.load expects the folder that holds bundle.json. Received the file path ${folder}`, { cause: e });
      }
      const hint = name === "bundle.json" && e.code === "ENOENT" ? `. ${NOT_A_BUNDLE}` : "";
      throw new Error(`reading ${where(name)} failed: ${e.message}${hint}`, { cause: e });
    }
  };
  return { read, where };
}

/**
 * Read every file of a bundle.
 * @param {BundleSource} source
 * @returns {Promise<BundleFiles>} where(name): the file's path or URL, for messages
 * @throws {Error} a file cannot be read, or bundle.json is not a bundle's of this format
 */
export async function readBundle(source) {
  const { read, where } = await reader(source);
  const text = new TextDecoder().decode(await read("bundle.json"));
  let metadata;
  try {
    metadata = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where("bundle.json")} is not JSON (${e.message}). ${NOT_A_BUNDLE}`, { cause: e });
  }
  if (metadata?.format !== FORMAT) {
    throw new Error(`${where("bundle.json")} expects format ${FORMAT}. Received: ${describe(metadata?.format)}`);
  }
  const files = metadata.files;
  const [trainStep, evaluation, model, state] = await Promise.all(
    [files.train_step, files.eval, files.model, files.state].map(read),
  );
  return { metadata, trainStep, evaluation, model, state, where };
}

// stateBytes appends a trailer after the tensors: a magic, a fingerprint of the layout (names, dtypes, shapes,
// offsets) and the learning rate. Python's onnxtrain.bundle.unpack_state checks it the same way (_fingerprint); bytes
// without it (state.bin, or stateBytes before it was added) are read by their exact length.
const MAGIC = "OTJSSTA1";
const TRAILER_BYTES = 24; // magic (8), layout fingerprint (uint32), zero (uint32), learning rate (float64)

const elementSize = (entry) => (entry.dtype === "int64" ? 8 : entry.dtype === "float32" ? 4 : 0);

/** The bytes the tensors of `index` take: the end of the last, padded to 8 as Python's _pack pads each. */
export function stateLength(index) {
  const total = Math.max(0, ...index.map((e) => e.offset + elementSize(e) * e.shape.reduce((n, d) => n * d, 1)));
  return total + (-total & 7);
}

/** FNV-1a of the layout: another model's state (even one of the same length) has another fingerprint. */
function fingerprint(index) {
  const text = JSON.stringify(index.map((e) => [e.name, e.dtype, e.shape, e.offset]));
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/**
 * The tensors and (when stateBytes wrote it) the learning rate in state bytes of the layout `index` gives.
 * @param {Uint8Array} bytes any Uint8Array view (a Node.js Buffer, a subarray)
 * @param {TensorEntry[]} index bundle.json's "tensors"
 * @returns {{tensors: Map<string, Float32Array | BigInt64Array>, learningRate: number | undefined}}
 * @throws {TypeError | RangeError} bytes that are not this layout's: of another length, or another model's trailer
 */
export function readState(bytes, index) {
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`state bytes expects a Uint8Array (or Node.js Buffer). Received: ${describe(bytes)}`);
  }
  const length = stateLength(index);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let learningRate;
  if (bytes.length === length + TRAILER_BYTES && new TextDecoder().decode(bytes.subarray(length, length + 8)) === MAGIC) {
    const [received, expected] = [view.getUint32(length + 8, true), fingerprint(index)];
    if (received !== expected) {
      throw new RangeError(
        `state bytes expects the layout of this model (fingerprint ${expected.toString(16)}: ${index.length} ` +
          `tensors). Received: another model's state (fingerprint ${received.toString(16)})`,
      );
    }
    learningRate = view.getFloat64(length + 16, true);
  } else if (bytes.length !== length) {
    throw new RangeError(
      `state bytes expects ${length} bytes (state.bin of this model's ${index.length} tensors) or ` +
        `${length + TRAILER_BYTES} (stateBytes of this model). Received: ${bytes.length} bytes`,
    );
  }
  const tensors = new Map();
  for (const entry of index) {
    const size = elementSize(entry);
    if (size === 0) throw new TypeError(`state tensor ${entry.name} expects float32 or int64. Received: ${entry.dtype}`);
    const count = entry.shape.reduce((n, d) => n * d, 1);
    const values = size === 8 ? new BigInt64Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const at = entry.offset + i * size;
      values[i] = size === 8 ? view.getBigInt64(at, true) : view.getFloat32(at, true);
    }
    tensors.set(entry.name, values);
  }
  return { tensors, learningRate };
}

/**
 * The tensors state.bin holds, as typed arrays of their own (copies), by name.
 * @param {Uint8Array} bytes
 * @param {TensorEntry[]} index bundle.json's "tensors"
 * @returns {Map<string, Float32Array | BigInt64Array>}
 */
export function unpackState(bytes, index) {
  return readState(bytes, index).tensors;
}

/**
 * State bytes for `tensors`, in the layout `index` gives (state.bin's), with the trailer when `learningRate` is
 * given (stateBytes).
 * @param {Map<string, Float32Array | BigInt64Array>} tensors
 * @param {TensorEntry[]} index
 * @param {number} [learningRate]
 * @returns {Uint8Array}
 */
export function packState(tensors, index, learningRate) {
  const length = stateLength(index);
  const out = new Uint8Array(length + (learningRate === undefined ? 0 : TRAILER_BYTES));
  const view = new DataView(out.buffer);
  for (const entry of index) {
    const values = tensors.get(entry.name);
    if (values === undefined) throw new Error(`the state has no tensor ${entry.name}`);
    for (let i = 0; i < values.length; i++) {
      if (entry.dtype === "int64") view.setBigInt64(entry.offset + i * 8, BigInt(values[i]), true);
      else view.setFloat32(entry.offset + i * 4, Number(values[i]), true);
    }
  }
  if (learningRate !== undefined) {
    out.set(new TextEncoder().encode(MAGIC), length);
    view.setUint32(length + 8, fingerprint(index), true);
    view.setFloat64(length + 16, learningRate, true);
  }
  return out;
}

export const REBUNDLE = "Write the bundle again (`onnxtrain bundle MODEL_DIR BUNDLE_DIR`) instead of changing its files";

/**
 * Refuse sessions whose graph inputs and outputs are not the ones bundle.json names (a file of another model or
 * another bundle put in its place).
 * @param {BundleMetadata} metadata
 * @param {{file: string, session: any, inputs: string[], feedable: string[], outputs: string[]}[]} graphs
 * @param {(name: string) => string} where
 */
export function checkGraphs(metadata, graphs, where) {
  const list = (names) => names.slice(0, 4).join(", ") + (names.length > 4 ? ` and ${names.length - 4} more` : "");
  for (const { file, session, inputs, feedable, outputs } of graphs) {
    const lacking = (names, have) => names.filter((name) => !have.includes(name));
    const problems = [
      [lacking(inputs, session.inputNames), "lacks the inputs"],
      [lacking(session.inputNames, feedable), "has inputs bundle.json does not name:"],
      [lacking(outputs, session.outputNames), "lacks the outputs"],
    ].filter(([names]) => names.length > 0);
    if (problems.length > 0) {
      throw new Error(
        `${where(file)} expects the graph bundle.json describes (model '${metadata.name}'). Received: a graph that ` +
          `${problems.map(([names, what]) => `${what} ${list(names)}`).join("; ")}. ${REBUNDLE}.`,
      );
    }
  }
}
