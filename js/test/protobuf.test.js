// writeInitializers against the bundle's own model.onnx: every other byte kept, the named data replaced.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { parseFields, readInitializers, writeInitializers } from "../src/protobuf.js";

const model = new Uint8Array(await readFile(new URL("./fixtures/bundle/model.onnx", import.meta.url)));

test("writing the weights a model already holds gives the same initializers and every other field unchanged", () => {
  const weights = readInitializers(model);
  assert.deepEqual([...weights.keys()], ["dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"]);
  const rewritten = writeInitializers(model, weights);
  assert.deepEqual(readInitializers(rewritten), weights);
  const fieldsOf = (bytes) => parseFields(bytes).map((f) => f.number);
  assert.deepEqual(fieldsOf(rewritten), fieldsOf(model));
  const kept = (bytes) => parseFields(bytes).filter((f) => f.number !== 7).map((f) => bytes.subarray(f.start, f.end).join());
  assert.deepEqual(kept(rewritten), kept(model));
});

test("new values land in the named initializer only", () => {
  const bias = Float32Array.of(1.5, -2, 3.25);
  const out = readInitializers(writeInitializers(model, { "dense_2.bias": bias }));
  assert.deepEqual(out.get("dense_2.bias"), bias);
  assert.deepEqual(out.get("dense_1.kernel"), readInitializers(model).get("dense_1.kernel"));
});

test("an unknown name or a wrong size is refused", () => {
  assert.throws(() => writeInitializers(model, { nope: new Float32Array(1) }), /the model has no initializer named nope/);
  assert.throws(
    () => writeInitializers(model, { "dense_2.bias": new Float32Array(4) }),
    /initializer dense_2.bias has 3 values \(dims \[3\]\); received 4/,
  );
});

test("a truncated message is refused", () => {
  assert.throws(() => parseFields(model.subarray(0, model.length - 5)), /runs past the end|truncated/);
});
