// The options a bundle's sessions are opened with: the caller's, with ONNX Runtime's Pad_Fusion switched off as
// onnxtrain's Python sessions switch it off (onnxtrain/_runtime.py DISABLED_OPTIMIZERS).
//
// Pad_Fusion folds a zero Pad into the next MaxPool's or AveragePool's own pads, where MaxPool pads with -inf: a
// Conv -> ZeroPadding2D -> MaxPooling2D(padding="same") model computes other numbers (microsoft/onnxruntime#18136,
// #21556; still so in onnxruntime-node and -web 1.30). The session config entry below switches off that one
// optimizer: graphOptimizationLevel "disabled" would too, but a small CNN then predicts twice as slowly.

import { describe } from "./inputs.js";

/** The optimizers onnxtrain's sessions run without (their registered names). */
export const DISABLED_OPTIMIZERS = Object.freeze(["Pad_Fusion"]);

/** ONNX Runtime's session config key (onnxruntime_session_options_config_keys.h): names separated by ";". */
export const DISABLE_OPTIMIZERS_KEY = "optimization.disable_specified_optimizers";

const isRecord = (value) => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * `given` (ort.InferenceSession.create's options) with DISABLED_OPTIMIZERS added to the optimizers its `extra`
 * disables, given flat ({"optimization.disable_specified_optimizers": "A;B"}) or nested ({optimization:
 * {disable_specified_optimizers: "A;B"}}); everything else is kept as given. `given` is not changed.
 * @param {Record<string, unknown>} [given]
 * @param {string} [argument] how messages name `given`
 * @returns {Record<string, unknown>}
 * @throws {TypeError} `given`, or its `extra`, is not an object
 */
export function sessionOptions(given = {}, argument = "sessionOptions") {
  if (!isRecord(given)) {
    throw new TypeError(
      `${argument} expects an object of ort.InferenceSession options ({executionProviders, intraOpNumThreads, ...}). ` +
        `Received: ${describe(given)}`,
    );
  }
  const extra = given.extra ?? {};
  if (!isRecord(extra)) {
    throw new TypeError(`${argument}.extra expects an object of session config entries. Received: ${describe(extra)}`);
  }
  const nested = isRecord(extra.optimization) ? extra.optimization : {};
  const listed = [extra[DISABLE_OPTIMIZERS_KEY], nested.disable_specified_optimizers]
    .filter((value) => value !== undefined && value !== null)
    .flatMap((value) => String(value).split(";"))
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const merged = { ...extra, [DISABLE_OPTIMIZERS_KEY]: [...new Set([...listed, ...DISABLED_OPTIMIZERS])].join(";") };
  if ("disable_specified_optimizers" in nested) {
    // one entry only: ONNX Runtime would keep whichever of the two it read last
    const { disable_specified_optimizers: _moved, ...rest } = nested;
    merged.optimization = rest;
  }
  return { ...given, extra: merged };
}
