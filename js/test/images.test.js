// Canvas pixels (src/images.js): RGBA bytes given as they are for a 1- or 3-channel input are refused, saying how many
// examples they would have made and what to pass; an ImageData is refused with the same fix; imagePixels converts
// them (its gray values are checked against Pillow's convert("L") in tests/test_bundle_inputs.py).

import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer, imagePixels } from "../src/index.js";
import { rgbaMismatch } from "../src/images.js";
import { splitInputs } from "../src/inputs.js";
import { inputRows } from "../src/batches.js";

const BUNDLE = fileURLToPath(new URL("./fixtures/bundle/", import.meta.url)); // input [4, 4, 1], input_scale 1/255

/** RGBA bytes of `images` 4x4 images: gray values (i * 37) % 256, opaque. */
const canvas = (images) => {
  const rgba = new Uint8ClampedArray(images * 16 * 4);
  for (let p = 0; p < images * 16; p++) rgba.set([(p * 37) % 256, (p * 37) % 256, (p * 37) % 256, 255], p * 4);
  return rgba;
};
const imageData = (rgba) => ({ data: rgba, width: 4, height: 4, colorSpace: "srgb" });

/** bundle.json's metadata for one float input of `shape` (8x8 images and more are taken for images). */
const imageModel = (shape) => ({ inputs: [{ name: "input", dtype: "float32", shape: [null, ...shape] }], input_scale: 1 / 255 });

/** RGBA bytes of `images` canvases of `pixels` pixels each: gray values (p * 37) % 256, opaque. */
const rgbaOf = (images, pixels) => {
  const rgba = new Uint8ClampedArray(images * pixels * 4);
  for (let p = 0; p < images * pixels; p++) rgba.set([(p * 37) % 256, (p * 37) % 256, (p * 37) % 256, 255], p * 4);
  return rgba;
};

test("RGBA bytes for a 1-channel image input are refused: they would be 4 examples per image", () => {
  const expected =
    "x expects 1 value per pixel for input 'input' (example shape [28,28,1]). Received: a Uint8ClampedArray of 3136 " +
    "values, 4 per pixel of 1 image of 784 pixels as a canvas's ImageData.data holds them (RGBA), which would be read " +
    'as 4 examples. Convert them: imagePixels(imageData, 1, {gray: "luminance"}) (import { imagePixels } from ' +
    '"onnxtrain-js"). If they are gray values already, pass them as a Uint8Array: Uint8Array.from(x)';
  assert.throws(() => inputRows(rgbaOf(1, 784), imageModel([28, 28, 1])), { name: "RangeError", message: expected });
  assert.throws(() => inputRows(rgbaOf(2, 784), imageModel([784])), /example shape \[784\]\)\. .*2 images of 784 pixels .*read as 8 examples/);
  assert.throws(() => inputRows(rgbaOf(1, 64), imageModel([8, 8])), /1 image of 64 pixels/);
  // gray pixels in a Uint8ClampedArray (not a multiple of 4 images' RGBA) are read as a Uint8Array's
  const gray = Uint8ClampedArray.from({ length: 3 * 784 }, (_, i) => i % 256);
  assert.deepEqual(inputRows(gray, imageModel([28, 28, 1])), inputRows(Uint8Array.from(gray), imageModel([28, 28, 1])));
  // small examples are features, not images: [4, 4, 1] and a flat [120] (not square) take a Uint8ClampedArray
  assert.equal(inputRows(rgbaOf(1, 16), imageModel([4, 4, 1])).count, 4);
  assert.equal(inputRows(new Uint8ClampedArray(480), imageModel([120])).count, 4);
});

test("RGBA bytes for a 3-channel input are refused too, however many images", () => {
  const example = [8, 8, 3];
  assert.match(rgbaMismatch(rgbaOf(3, 64), example, "x", "rgb"), /expects 3 values per pixel .*3 images of 64 pixels .*read as 4 examples.*imagePixels\(imageData, 3\)/);
  assert.match(rgbaMismatch(rgbaOf(1, 64), example, "x", "rgb"), /1 image of 64 pixels .*RGBA\), no whole number of examples/);
  assert.equal(rgbaMismatch(rgbaOf(1, 64), [8, 8, 4], "x", "rgba"), ""); // a 4-channel input reads RGBA
  assert.equal(rgbaMismatch(Uint8Array.from(rgbaOf(1, 64)), example, "x", "rgb"), ""); // not a canvas's array
});

test("an ImageData (alone, in a list, or as one of several inputs) is refused saying to pass imagePixels", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const refused = /x expects pixels as typed arrays of values \(input shape \[4,4,1\]\)\. Received: an ImageData \(4x4, 4 values per pixel: RGBA\)\. Pass imagePixels\(imageData, 1\)/;
  await assert.rejects(trainer.predict(imageData(canvas(1))), { name: "TypeError", message: refused });
  await assert.rejects(trainer.evaluate([imageData(canvas(1)), imageData(canvas(1))], [0, 1]), refused);
  const two = [{ name: "meta", shape: [null, 3] }, { name: "image", shape: [null, 4, 4, 3] }];
  assert.throws(() => splitInputs([new Float32Array(3), imageData(canvas(1))], two), /x\[1\] expects pixels .*\(input shape \[4,4,3\]\).*imagePixels\(imageData, 3\)/);
  const pixels = imagePixels([imageData(canvas(1)), imageData(canvas(1))], 1);
  assert.deepEqual(await trainer.predict(pixels), await trainer.predict(Uint8Array.from(canvas(2).filter((_, i) => i % 4 === 0))));
});

test("imagePixels keeps RGB, takes gray by luminance or alpha, and refuses what is not RGBA", () => {
  const rgba = Uint8ClampedArray.of(255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30, 255, 255, 255, 40);
  assert.deepEqual(imagePixels(rgba, 3), Uint8Array.of(255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255));
  assert.deepEqual(imagePixels(rgba, 4), Uint8Array.from(rgba));
  assert.deepEqual(imagePixels(rgba, 1, { gray: "alpha" }), Uint8Array.of(10, 20, 30, 40));
  assert.equal(imagePixels(rgba, 1)[3], 255);
  assert.throws(() => imagePixels(rgba, 2), /channels 1 \(gray\), 3 \(RGB\) or 4 \(RGBA\)\. Received: 2/);
  assert.throws(() => imagePixels(rgba, 1, { gray: "mean" }), /options.gray "luminance" or "alpha"\. Received: "mean"/);
  assert.throws(() => imagePixels(new Float32Array(8), 1), /expects an ImageData .*Received: images=a Float32Array of 8 values/);
  assert.throws(() => imagePixels([rgba, new Uint8ClampedArray(3)], 1), /Received: images\[1\]=a Uint8ClampedArray of 3 values/);
});
