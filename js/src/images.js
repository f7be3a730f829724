// Canvas pixels: a canvas's ImageData (ctx.getImageData) holds 4 bytes per pixel, RGBA, in a Uint8ClampedArray, where
// a model reads 1 (gray) or 3 (RGB) channels. imagePixels converts them, as Pillow's convert("L") / convert("RGB")
// would; rgbaMismatch finds RGBA bytes given as they are (each image would be read as 4 gray examples), so that
// src/inputs.js refuses them with that fix.

import { describe } from "./inputs.js";

/** An ImageData (or an object with its data, width and height: an OffscreenCanvas's, a node-canvas one). */
export const isImageData = (value) =>
  typeof value === "object" && value !== null && ArrayBuffer.isView(value.data) && Number.isSafeInteger(value.width) &&
  Number.isSafeInteger(value.height) && !Array.isArray(value);

const GRAY = ["luminance", "alpha"];
const MIN_PIXELS = 64; // 8x8: smaller examples are read as features, whatever their array

/**
 * The pixels of canvas images as a model of `channels` channels reads them: a Uint8Array (integer pixels, which the
 * model's input scale divides as any Uint8Array), one image after another, channels last.
 * @param {ImageData | {data: ArrayLike<number>, width: number, height: number} | Uint8ClampedArray | Uint8Array |
 *   (ImageData | {data: ArrayLike<number>, width: number, height: number})[]} images an ImageData, a list of them,
 *   or RGBA bytes (4 per pixel) of any number of images
 * @param {1 | 3 | 4} channels the model input's last axis
 * @param {{gray?: "luminance" | "alpha"}} [options] for 1 channel: "luminance" (the default, Pillow's convert("L"):
 *   (19595 R + 38470 G + 7471 B + 32768) >> 16, alpha ignored), or "alpha" (a drawing on a transparent canvas)
 * @returns {Uint8Array}
 * @throws {TypeError | RangeError} naming what was received
 */
export function imagePixels(images, channels, options = {}) {
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new RangeError(`imagePixels expects channels 1 (gray), 3 (RGB) or 4 (RGBA). Received: ${describe(channels)}`);
  }
  const gray = options?.gray ?? "luminance";
  if (!GRAY.includes(gray)) throw new RangeError(`imagePixels expects options.gray "luminance" or "alpha". Received: ${describe(gray)}`);
  const list = Array.isArray(images) ? images : [images];
  const parts = list.map((image, k) => {
    const rgba = isImageData(image) ? image.data : image;
    const name = Array.isArray(images) ? `images[${k}]` : "images";
    if (!(rgba instanceof Uint8ClampedArray || rgba instanceof Uint8Array) || rgba.length % 4 !== 0) {
      throw new TypeError(
        `imagePixels expects an ImageData (ctx.getImageData(...)), a list of them, or RGBA bytes (a Uint8ClampedArray ` +
          `of 4 values per pixel). Received: ${name}=${describe(isImageData(image) ? rgba : image)}`,
      );
    }
    return rgba;
  });
  const pixels = parts.reduce((n, p) => n + p.length / 4, 0);
  const out = new Uint8Array(pixels * channels);
  let at = 0;
  for (const rgba of parts) {
    for (let i = 0; i < rgba.length; i += 4) {
      if (channels === 1) {
        out[at++] = gray === "alpha" ? rgba[i + 3] : (19595 * rgba[i] + 38470 * rgba[i + 1] + 7471 * rgba[i + 2] + 32768) >>> 16;
      } else {
        for (let c = 0; c < channels; c++) out[at++] = rgba[i + c];
      }
    }
  }
  return out;
}

/**
 * Words for RGBA canvas bytes given for an input that reads 1 or 3 channels (a Uint8ClampedArray holding 4 values
 * per pixel of whole images), else "": each image would be read as several examples.
 * @param {ArrayLike<number | bigint>} values
 * @param {number[]} example the input's example shape
 * @param {string} argument how messages name the values
 * @param {string} input the input's name
 */
export function rgbaMismatch(values, example, argument, input) {
  if (!(values instanceof Uint8ClampedArray) || values.length === 0) return "";
  const last = example.at(-1) ?? 1;
  const channels = example.length > 1 && (last === 1 || last === 3) ? last : 1; // [784] or [28, 28]: gray pixels
  const perImage = example.reduce((n, d) => n * d, 1) / channels; // pixels
  // images only: [H, W, C], [H, W], or a flat square [784]; of 8x8 pixels or more (not a few features)
  const image = example.length > 1 || Number.isInteger(Math.sqrt(perImage));
  if (!image || perImage < MIN_PIXELS || values.length % (4 * perImage) !== 0) return "";
  const images = values.length / (4 * perImage);
  const examples = values.length / (perImage * channels);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return (
    `${argument} expects ${plural(channels, "value")} per pixel for input '${input}' (example shape [${example}]). ` +
    `Received: a Uint8ClampedArray of ${values.length} values, 4 per pixel of ${plural(images, "image")} of ` +
    `${perImage} pixels as a canvas's ImageData.data holds them (RGBA), ` +
    `${Number.isInteger(examples) ? `which would be read as ${plural(examples, "example")}` : "no whole number of examples"}. Convert them: imagePixels(imageData, ${channels}${channels === 1 ? ', {gray: "luminance"}' : ""}) ` +
    `(import { imagePixels } from "onnxtrain-js"). If they are ${channels === 1 ? "gray" : "RGB"} values already, pass ` +
    `them as a Uint8Array: Uint8Array.from(${argument})`
  );
}

/**
 * Words for an ImageData given as x: what to pass instead.
 * @param {{width: number, height: number}} image
 * @param {number[]} example the input's example shape
 * @param {string} argument
 */
export function imageDataHint(image, example, argument) {
  const last = example.at(-1) ?? 1;
  const channels = example.length > 1 && (last === 1 || last === 3 || last === 4) ? last : 1;
  return (
    `${argument} expects pixels as typed arrays of values (input shape [${example}]). Received: an ImageData ` +
    `(${image.width}x${image.height}, 4 values per pixel: RGBA). Pass imagePixels(imageData, ${channels}) (import ` +
    '{ imagePixels } from "onnxtrain-js"; a list of ImageData for several images): a Uint8Array, which the ' +
    "model's input scale divides as any pixels"
  );
}
