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

/**
 * A session of a bundle's `bytes`, opened with `options` (sessionOptions(given)). When ONNX Runtime refuses, the
 * message blames what failed: the caller's options (an execution provider this package or machine lacks), when the
 * same bytes open with the default options; else the file.
 * @param {any} ort
 * @param {Uint8Array} bytes
 * @param {Record<string, unknown>} options what the session is opened with
 * @param {Record<string, unknown>} given the caller's sessionOptions
 * @param {string} where the file's path or URL
 * @param {string} rebundle what to do about a file ONNX Runtime cannot load
 * @returns {Promise<any>}
 * @throws {Error} naming the options or the file, the cause kept
 */
export async function openSession(ort, bytes, options, given, where, rebundle) {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    const reason = String(e?.message ?? e).trim().replace(/\.$/, "");
    if (Object.keys(given).length > 0 && (await opensWithDefaults(ort, bytes))) {
      const shown = JSON.stringify(given);
      throw new Error(
        `ONNX Runtime could not open ${where} with Trainer.load's options.sessionOptions ` +
          `${shown.length > 300 ? `${shown.slice(0, 300)}...` : shown}: ${reason}. The bundle opens with the default ` +
          "options, so an option is at fault, most often an execution provider this package or machine lacks " +
          "(onnxruntime-node: 'cpu', and 'cuda', 'dml' or 'coreml' where its build and the machine have them; " +
          "onnxruntime-web: 'wasm', and 'webgpu' or 'webnn' where the browser has them): leave it out, or name one " +
          "this package and machine have",
        { cause: e },
      );
    }
    throw new Error(`ONNX Runtime could not load ${where}: ${reason}. ${rebundle}.`, { cause: e });
  }
}

/** Whether `bytes` open with sessionOptions() alone (the session is released again). */
async function opensWithDefaults(ort, bytes) {
  try {
    const session = await ort.InferenceSession.create(bytes, sessionOptions());
    await session.release?.();
    return true;
  } catch {
    return false;
  }
}
