// Learning-rate schedules: Keras 3's six, as Python's onnxtrain/optimizers/_keras_schedules.py computes them (the same
// formulas, in the same order, in float64; the train step reads the rate as float32), from the
// {"class_name", "config"} bundle.json's `learning_rate_schedule` holds; or a function of the caller's. The rate of
// an update is schedule(step), step the updates made before it (Keras' optimizer.iterations), as Python's fit sets it.

import { describe } from "./inputs.js";

/**
 * @typedef {{describe: string, rateAt: (step: number) => number}} Schedule the rate of the update after `step`
 *   updates (a finite number >= 0), and how messages name the schedule
 */

/** A config value: a finite number (or a boolean, for `kind` "boolean"), else a TypeError naming the schedule. */
function read(config, className, key, kind = "number", fallback = undefined) {
  const value = config[key] ?? fallback;
  const ok = kind === "boolean" ? typeof value === "boolean" : typeof value === "number" && Number.isFinite(value);
  if (!ok) {
    throw new TypeError(
      `bundle.json's learning_rate_schedule ${className} expects config.${key} to be ${kind === "boolean" ? "true or false" : "a finite number"}. ` +
        `Received: ${describe(config[key])}. Write the bundle again from Python instead of changing bundle.json`,
    );
  }
  return value;
}

/** progress = step / decay_steps, floored with staircase (ExponentialDecay's and InverseTimeDecay's). */
const stepDecay = (config, className) => {
  const initial = read(config, className, "initial_learning_rate");
  const decaySteps = read(config, className, "decay_steps");
  const decayRate = read(config, className, "decay_rate");
  const staircase = read(config, className, "staircase", "boolean", false);
  return { initial, decayRate, progress: (step) => (staircase ? Math.floor(step / decaySteps) : step / decaySteps) };
};

const cosine = (step, decaySteps, alpha) => (1 - alpha) * 0.5 * (1.0 + Math.cos((Math.PI * step) / decaySteps)) + alpha;

/** The formula of each of Keras' six schedules, by class name, from its config. */
const FORMULAS = {
  ExponentialDecay(config) {
    const { initial, decayRate, progress } = stepDecay(config, "ExponentialDecay");
    return (step) => initial * decayRate ** progress(step);
  },
  InverseTimeDecay(config) {
    const { initial, decayRate, progress } = stepDecay(config, "InverseTimeDecay");
    return (step) => initial / (1 + decayRate * progress(step));
  },
  PiecewiseConstantDecay(config) {
    const { boundaries, values } = config;
    const numbers = (list) => Array.isArray(list) && list.every((v) => typeof v === "number" && Number.isFinite(v));
    if (!numbers(boundaries) || !numbers(values) || values.length !== boundaries.length + 1) {
      throw new TypeError(
        "bundle.json's learning_rate_schedule PiecewiseConstantDecay expects config.boundaries (numbers) and " +
          `config.values (one more number). Received: ${describe(boundaries)} and ${describe(values)}`,
      );
    }
    // Python's bisect_left: the first boundary >= step
    return (step) => {
      let i = 0;
      while (i < boundaries.length && boundaries[i] < step) i++;
      return values[i];
    };
  },
  PolynomialDecay(config) {
    const c = "PolynomialDecay";
    const initial = read(config, c, "initial_learning_rate");
    const decaySteps = read(config, c, "decay_steps");
    const end = read(config, c, "end_learning_rate", "number", 0.0001);
    const power = read(config, c, "power", "number", 1.0);
    const cycle = read(config, c, "cycle", "boolean", false);
    return (step) => {
      let steps = decaySteps;
      if (cycle) steps = steps * (step === 0 ? 1.0 : Math.ceil(step / decaySteps));
      else step = Math.min(step, steps);
      return (initial - end) * (1 - step / steps) ** power + end;
    };
  },
  CosineDecay(config) {
    const c = "CosineDecay";
    const initial = read(config, c, "initial_learning_rate");
    const decaySteps = read(config, c, "decay_steps");
    const alpha = read(config, c, "alpha", "number", 0.0);
    const target = config.warmup_target ?? null;
    if (target === null) return (step) => initial * cosine(Math.min(step, decaySteps), decaySteps, alpha);
    const warmupTarget = read(config, c, "warmup_target");
    const warmupSteps = read(config, c, "warmup_steps", "number", 0);
    return (step) => {
      step = Math.min(step, decaySteps + warmupSteps);
      if (step < warmupSteps) return (warmupTarget - initial) * (step / warmupSteps) + initial;
      return warmupTarget * cosine(step - warmupSteps, decaySteps, alpha);
    };
  },
  CosineDecayRestarts(config) {
    const c = "CosineDecayRestarts";
    const initial = read(config, c, "initial_learning_rate");
    const first = read(config, c, "first_decay_steps");
    const tMul = read(config, c, "t_mul", "number", 2.0);
    const mMul = read(config, c, "m_mul", "number", 1.0);
    const alpha = read(config, c, "alpha", "number", 0.0);
    return (step) => {
      let fraction = step / first;
      let restart;
      if (tMul === 1.0) {
        restart = Math.floor(fraction);
        fraction -= restart;
      } else {
        restart = Math.floor(Math.log(1.0 - fraction * (1.0 - tMul)) / Math.log(tMul));
        const done = (1.0 - tMul ** restart) / (1.0 - tMul); // the length of the finished periods
        fraction = (fraction - done) / tMul ** restart;
      }
      const decayed = 0.5 * mMul ** restart * (1.0 + Math.cos(Math.PI * fraction));
      return initial * ((1 - alpha) * decayed + alpha);
    };
  },
};

/** The class names onnxtrain-js computes (Keras' six). */
export const SCHEDULES = Object.freeze(Object.keys(FORMULAS));

/** "ExponentialDecay(initial_learning_rate=0.1, decay_steps=1, ...)", as Python's repr writes a schedule. */
function describeSchedule(className, config) {
  const args = Object.entries(config ?? {})
    .filter(([key]) => key !== "name")
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return `${className}(${args.join(", ")})`;
}

/**
 * A rate function checked at each use: a finite number >= 0 within float32's range (the train step's learning_rate
 * input), else a RangeError naming the schedule, the step and the value (Python's rate_at words).
 * @param {(step: number) => unknown} formula
 * @param {string} name how messages name the schedule
 * @returns {(step: number) => number}
 */
function checked(formula, name) {
  return (step) => {
    const value = formula(step);
    if (typeof value !== "number" || !(value >= 0 && Number.isFinite(value) && Number.isFinite(Math.fround(value)))) {
      throw new RangeError(
        `The learning-rate schedule ${name} returned ${describe(value)} at step ${step}; a learning rate must be a ` +
          "finite number >= 0 within float32's range",
      );
    }
    return value;
  };
}

/**
 * The schedule a trainer applies: `given` (Trainer.load's options.schedule) when it is a function, none when it is
 * null, else the bundle's (bundle.json's learning_rate_schedule, or the optimizer config's learning_rate where an
 * older bundle lacks that key).
 * @param {import("./index.js").BundleMetadata} metadata
 * @param {unknown} given
 * @returns {Schedule | null}
 * @throws {TypeError} `given` is neither a function, null nor undefined; or the bundle's schedule is a class
 *   onnxtrain-js cannot compute (a LearningRateSchedule subclass of one's own), saying what to pass instead
 */
export function scheduleOf(metadata, given) {
  if (typeof given === "function") {
    return { describe: "options.schedule", rateAt: checked(/** @type {any} */ (given), "options.schedule") };
  }
  if (given !== undefined && given !== null) {
    throw new TypeError(
      "Trainer.load expects options.schedule to be a function (step) => learning rate, or null (no schedule: " +
        `the rate you set). Received: ${describe(given)}`,
    );
  }
  const fromOptimizer = metadata.optimizer?.learning_rate;
  const serialized =
    "learning_rate_schedule" in metadata
      ? metadata.learning_rate_schedule
      : typeof fromOptimizer === "object" && fromOptimizer !== null
        ? fromOptimizer
        : null;
  if (given === null || serialized === null || serialized === undefined) return null;
  const className = serialized.class_name;
  const config = serialized.config ?? {};
  const name = describeSchedule(className, config);
  const formula = Object.hasOwn(FORMULAS, className) ? FORMULAS[className] : undefined;
  if (formula === undefined) {
    throw new TypeError(
      `bundle.json's optimizer learning rate is the schedule ${name}, which onnxtrain-js cannot compute: it computes ` +
        `Keras' six (${SCHEDULES.join(", ")}), and ${describe(className)} is a class of your own. Pass its formula: ` +
        "Trainer.load(ort, source, {schedule: (step) => rate}) (step: the updates made so far, as your class's " +
        "__call__ takes it), or {schedule: null} to train at the rate you set (trainer.learningRate), or compile " +
        "the Python model with one of those six",
    );
  }
  return { describe: name, rateAt: checked(formula(config), name) };
}
