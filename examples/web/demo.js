// The demo page: load the fashion-mlp training bundle (data/, written by prepare.py), fine-tune it with onnxtrain-js
// and onnxruntime-web on one slice of the Fashion-MNIST test images plus the user's own drawings, score it on a
// held-out slice, chart loss and accuracy, download the .onnx.
// ?bundle=URL&data=URL point it at another bundle and images (the tests do); ?threads=N sets the wasm threads.

import { drawChart } from "./chart.js";
import { DrawingPad, paint, SIZE } from "./drawing.js";

const params = new URLSearchParams(location.search);
const BUNDLE = params.get("bundle") ?? "data/bundle/";
const DATA = params.get("data") ?? "data/";
const PREPARE = "python examples/web/prepare.py";
const $ = (id) => document.getElementById(id);

const state = {
  ort: null, trainer: null, images: null, labels: null, spec: null, stop: false, history: [], examples: [],
  busy: Promise.resolve(), trained: false, fileName: "",
};

/** A failure the page explains: what went wrong and the command that fixes it. */
class PageError extends Error {
  constructor(message, fix) {
    super(message);
    this.fix = fix;
  }
}

// One session call at a time: the live prediction waits for the training step in flight, and the other way round.
function serial(task) {
  const next = state.busy.then(task);
  state.busy = next.catch(() => {});
  return next;
}

function setState(name, message) {
  document.body.dataset.state = name;
  if (message !== undefined) $("status").textContent = message;
  const idle = name === "ready" || name === "done";
  $("controls").disabled = !(idle || name === "training");
  for (const element of $("controls").querySelectorAll("input, select, #train")) element.disabled = !idle;
  $("stop").disabled = name !== "training";
  $("download").disabled = !(idle && state.trained);
  $("draw").dataset.disabled = String(name === "loading" || name === "error");
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new PageError(`${url} was not found (HTTP ${response.status}).`, PREPARE);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadData() {
  const base = new URL(DATA, location.href);
  const json = new URL("data.json", base);
  const response = await fetch(json);
  if (!response.ok) throw new PageError(`No images at ${json} (HTTP ${response.status}).`, PREPARE);
  const [spec, images, labels] = await Promise.all([
    response.json(), fetchBytes(new URL("test-images.bin", base)), fetchBytes(new URL("test-labels.bin", base)),
  ]);
  Object.assign(state, { spec, images, labels });
}

async function loadTrainer() {
  let ort, Trainer;
  try {
    ort = await import("../../js/node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs");
    ({ Trainer } = await import("../../js/src/index.js"));
  } catch (e) {
    throw new PageError(`onnxruntime-web or onnxtrain-js did not load (${e.message}). If you served examples/web/, `
      + "serve the repository root instead; otherwise install the page's runtime.", "(cd js && npm ci --ignore-scripts)");
  }
  setUpThreads(ort);
  try {
    state.trainer = await Trainer.load(ort, BUNDLE, { sessionOptions: { executionProviders: ["wasm"] } });
  } catch (e) {
    throw new PageError(`The model bundle at ${BUNDLE} did not load: ${e.message}.`, PREPARE);
  }
  state.ort = ort;
}

// onnxruntime-web takes its thread count when it first starts, so a change reloads the page (?threads=N).
// More than one thread needs a cross-origin isolated page (COOP/COEP headers), which python -m http.server
// does not send.
function setUpThreads(ort) {
  const cores = navigator.hardwareConcurrency ?? 1;
  const most = globalThis.crossOriginIsolated ? Math.min(cores, 8) : 1;
  const wanted = Math.min(Number(params.get("threads") ?? 1) || 1, most);
  for (let n = 1; n <= most; n *= 2) $("threads").add(new Option(String(n), String(n), false, n === wanted));
  $("threads").title = globalThis.crossOriginIsolated ? "" : "more threads need a cross-origin isolated page";
  $("threads").onchange = () => {
    params.set("threads", $("threads").value);
    location.search = params.toString();
  };
  ort.env.wasm.numThreads = wanted;
}

const clamp = (value, low, high) => Math.max(low, Math.min(high, Math.round(Number(value)) || 0));

/** The split: images [0, heldFirst) to train on, [heldFirst, count) held out. */
function split() {
  const held = clamp($("heldout").value, 1, state.spec.count - 1);
  return { heldFirst: state.spec.count - held, held };
}

function updateSplit() {
  const { heldFirst, held } = split();
  $("heldout").value = String(held);
  $("count").max = String(heldFirst);
  $("count").value = String(clamp($("count").value, 0, heldFirst));
  $("train-range").textContent = `images 1–${heldFirst.toLocaleString()}`;
  $("heldout").title = `images ${(heldFirst + 1).toLocaleString()}–${state.spec.count.toLocaleString()}`;
}

const imageSize = () => state.spec.shape.reduce((a, b) => a * b, 1);

/** Images [start, start + n) as uint8 pixels and labels. */
function slice(start, n) {
  const size = imageSize();
  return [state.images.subarray(start * size, (start + n) * size), state.labels.subarray(start, start + n)];
}

const argmax = (row) => row.indexOf(Math.max(...row));

/** Right answers on the held-out slice, counted in batches of 1,000. */
async function heldOutAccuracy() {
  const { heldFirst, held } = split();
  let right = 0;
  for (let start = heldFirst; start < state.spec.count; start += 1000) {
    const n = Math.min(1000, state.spec.count - start);
    const result = await serial(() => state.trainer.evaluate(...slice(start, n)));
    right += Math.round(result.accuracy * n);
  }
  return { right, total: held };
}

function showAccuracy(id, { right, total }) {
  $(id).textContent = `${((right / total) * 100).toFixed(2)}%`;
  $(`${id}-count`).textContent = `${right.toLocaleString()} of ${total.toLocaleString()}`;
}

/** The items to train on: image indices (>= 0) and, ticked, each of my examples `repeats` times (-1 - k). */
function trainingSet() {
  const items = Array.from({ length: clamp($("count").value, 0, split().heldFirst) }, (_, i) => i);
  if ($("mine").checked) {
    const repeats = clamp($("repeats").value, 1, 1000);
    state.examples.forEach((_, k) => items.push(...Array(repeats).fill(-1 - k)));
  }
  return items;
}

/** A seeded shuffle (mulberry32), so a run can be repeated. */
function shuffle(items, seed) {
  let t = seed >>> 0;
  const random = () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

function batchOf(items) {
  const size = imageSize();
  const x = new Uint8Array(items.length * size);
  const y = new Uint8Array(items.length);
  items.forEach((item, j) => {
    const example = item >= 0 ? { pixels: slice(item, 1)[0], label: state.labels[item] } : state.examples[-1 - item];
    x.set(example.pixels, j * size);
    y[j] = example.label;
  });
  return [x, y];
}

async function fineTune() {
  const items = trainingSet();
  if (items.length === 0) {
    $("status").textContent = "Nothing to train on: set the images to train on above 0, or tick \"Add my "
      + "examples\" after adding some.";
    return;
  }
  const batch = clamp($("batch").value, 1, 1000);
  const epochs = clamp($("epochs").value, 1, 20); // a second press continues from the weights trained so far
  const stepsPerEpoch = Math.ceil(items.length / batch);
  try {
    // under the bundle's learning-rate schedule the trainer sets the rate before each step; else the field's
    if (state.trainer.schedule === null) state.trainer.learningRate = Number($("lr").value); // refuses 1e40, -1, NaN
  } catch (e) {
    $("status").textContent = `Learning rate ${JSON.stringify($("lr").value)}: ${e.message}. Enter a small number such as 0.001.`;
    return;
  }
  Object.assign(state, { history: [], stop: false });
  window.demoResult = undefined;
  $("after").textContent = "–";
  $("after-count").textContent = "";
  $("progress").removeAttribute("value");
  setState("training", "Scoring the held-out images before fine-tuning…");
  const before = await heldOutAccuracy();
  showAccuracy("before", before);
  $("progress").max = epochs * stepsPerEpoch;
  $("progress").value = 0;
  const start = performance.now();
  let seen = 0;
  outer: for (let epoch = 0; epoch < epochs; epoch++) {
    if ($("shuffle").checked) shuffle(items, epoch + 1);
    for (let first = 0; first < items.length; first += batch) {
      if (state.stop) break outer;
      const [x, y] = batchOf(items.slice(first, first + batch));
      const { loss, logits } = await serial(() => state.trainer.step(x, y));
      let right = 0;
      const classes = logits.length / y.length;
      for (let i = 0; i < y.length; i++) {
        if (argmax(logits.subarray(i * classes, (i + 1) * classes)) === y[i]) right++;
      }
      seen += y.length;
      state.history.push({ loss, accuracy: right / y.length });
      if (state.history.length % 5 === 0 || first + batch >= items.length) {
        const seconds = (performance.now() - start) / 1000;
        $("steps").textContent = String(state.history.length);
        $("time").textContent = `${seconds.toFixed(1)} s`;
        $("speed").textContent = Math.round(seen / seconds).toLocaleString();
        $("progress").value = state.history.length;
        const done = Math.min(first + batch, items.length).toLocaleString();
        $("status").textContent = `Fine-tuning, epoch ${epoch + 1} of ${epochs}: image ${done} of `
          + `${items.length.toLocaleString()}, loss ${loss.toFixed(4)}. Stop keeps the weights trained so far.`;
        drawChart($("chart"), state.history);
        await new Promise((resolve) => setTimeout(resolve)); // let the page paint and take the Stop click
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  $("time").textContent = `${seconds.toFixed(1)} s`;
  $("speed").textContent = Math.round(seen / seconds).toLocaleString();
  $("status").textContent = "Scoring the held-out images after fine-tuning…";
  const after = await heldOutAccuracy();
  showAccuracy("after", after);
  state.trained = true;
  const threads = state.ort.env.wasm.numThreads;
  const { heldFirst, held } = split();
  window.demoResult = {
    steps: state.history.length, images: seen, seconds, threads, before: $("before").textContent,
    after: $("after").textContent, heldOut: { first: heldFirst, count: held, before: before.right, after: after.right },
  };
  drawChart($("chart"), state.history);
  await Promise.all([drawGallery(), drawExamples(), predictDrawing()]);
  setState("done", `${state.stop ? "Stopped" : "Done"}: ${state.history.length} steps, ${seen.toLocaleString()} `
    + `images in ${seconds.toFixed(1)} s (${threads} thread${threads > 1 ? "s" : ""}). Held-out accuracy `
    + `${$("before").textContent} → ${$("after").textContent}. Download saves ${state.fileName}.`);
}

/** Figures of 28×28 images with the model's guesses as captions (green when `labels` agree, red when not). */
async function guessFigures(images, labels, caption, remove) {
  const n = labels.length;
  if (n === 0) return [];
  const { logits } = await serial(() => state.trainer.evaluate(images, labels));
  const classes = logits.length / Math.max(n, 1);
  return Array.from(labels, (label, i) => {
    const canvas = document.createElement("canvas");
    paint(canvas, images.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE));
    const guess = argmax(logits.subarray(i * classes, (i + 1) * classes));
    const figure = document.createElement("figure");
    const text = document.createElement("figcaption");
    text.textContent = caption(label, guess);
    text.className = guess === label ? "right" : "wrong";
    text.dataset.guess = String(guess);
    figure.append(canvas, text);
    if (remove) {
      const button = document.createElement("button");
      button.textContent = "×";
      button.title = "remove this example";
      button.onclick = () => remove(i);
      figure.append(button);
    }
    return figure;
  });
}

async function drawGallery() {
  const names = state.spec.class_names;
  const { heldFirst, held } = split();
  const figures = await guessFigures(...slice(heldFirst, Math.min(16, held)), (label, guess) => names[guess]);
  figures.forEach((figure, i) => { figure.title = `true: ${names[state.labels[heldFirst + i]]}`; });
  $("gallery").replaceChildren(...figures);
}

async function drawExamples() {
  const names = state.spec.class_names;
  $("mine-count").textContent = String(state.examples.length);
  if (state.examples.length === 0) {
    $("examples").innerHTML = '<p class="hint" style="grid-column: 1 / -1">None yet.</p>';
    return;
  }
  const images = new Uint8Array(state.examples.length * SIZE * SIZE);
  state.examples.forEach((example, i) => images.set(example.pixels, i * SIZE * SIZE));
  const labels = Uint8Array.from(state.examples, (example) => example.label);
  const remove = (i) => { state.examples.splice(i, 1); drawExamples().catch(fail); };
  const caption = (label, guess) => `${names[label]} → ${names[guess]}`;
  $("examples").replaceChildren(...(await guessFigures(images, labels, caption, remove)));
}

let pad;
let predicting = false;
let predictAgain = false;

/** The model's guess for the drawing, shown as bars of the three likeliest classes. */
async function predictDrawing() {
  if (predicting) { predictAgain = true; return; }
  predicting = true;
  try {
    do {
      predictAgain = false;
      const version = pad.version;
      const pixels = pad.pixels();
      paint($("seen"), pixels);
      $("add").disabled = pixels === null || $("example-class").value === "";
      if (pixels === null) {
        $("prediction").innerHTML = "<li>Draw an item to see the model's guess.</li>";
        window.demoPrediction = { version, guess: null };
        continue;
      }
      const { logits } = await serial(() => state.trainer.evaluate(pixels, [0]));
      const exp = Array.from(logits, (v) => Math.exp(v - Math.max(...logits)));
      const total = exp.reduce((a, b) => a + b, 0);
      const ranked = exp.map((e, k) => [e / total, k]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      $("prediction").replaceChildren(...ranked.map(([p, k]) => {
        const row = document.createElement("li");
        const percent = (p * 100).toFixed(1);
        row.innerHTML = `<span></span><span class="bar" style="width:${percent}%"></span><span>${Math.round(p * 100)}%</span>`;
        row.firstChild.textContent = state.spec.class_names[k];
        return row;
      }));
      window.demoPrediction = { version, guess: argmax(logits), pixels: Array.from(pixels) };
    } while (predictAgain);
  } finally {
    predicting = false;
  }
}

function setUpDrawing() {
  let frame = 0;
  pad = new DrawingPad($("draw"), () => {
    if (state.trainer === null || frame !== 0) return;
    frame = requestAnimationFrame(() => { frame = 0; predictDrawing().catch(fail); });
  });
  state.spec.class_names.forEach((name, k) => $("example-class").add(new Option(name, String(k))));
  $("brush").onchange = () => { pad.brush = Number($("brush").value); };
  $("clear").onclick = () => pad.clear();
  $("example-class").onchange = () => { $("add").disabled = pad.empty || $("example-class").value === ""; };
  $("add").onclick = () => {
    const pixels = pad.pixels();
    if (pixels === null) return;
    state.examples.push({ pixels, label: Number($("example-class").value) });
    $("mine").checked = true;
    $("example-class").value = ""; // each drawing gets its class chosen afresh
    pad.clear();
    drawExamples().catch(fail);
  };
  window.demoDrawing = () => ({ version: pad.version, pixels: pad.empty ? null : Array.from(pad.pixels()) });
  window.demoExamples = () => state.examples.map((e) => ({ label: e.label, pixels: Array.from(e.pixels) }));
}

function download() {
  const blob = new Blob([state.trainer.exportModel()], { type: "application/octet-stream" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = state.fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function main() {
  setState("loading", "Loading the images…");
  await loadData();
  $("status").textContent = "Loading onnxruntime-web and the model…";
  await loadTrainer();
  const m = state.trainer.metadata;
  state.fileName = `${m.name}-finetuned.onnx`;
  $("download").textContent = `Download ${state.fileName}`;
  $("lr").value = String(m.learning_rate);
  if (state.trainer.schedule !== null) { // the model was compiled with a schedule, which the trainer applies
    $("lr").disabled = true;
    $("lr").title = `Set by the bundle's schedule: ${state.trainer.schedule}`;
  }
  $("heldout").value = String(Math.min(2000, Math.floor(state.spec.count / 5)));
  $("count").value = String(state.spec.count);
  updateSplit();
  $("heldout").onchange = () => { updateSplit(); drawGallery().catch(fail); };
  setUpDrawing();
  drawChart($("chart"), []);
  await drawGallery();
  const size = (t) => t.shape.reduce((a, b) => a * b, 1);
  const count = m.tensors.filter((t) => m.trainable.includes(t.name)).reduce((n, t) => n + size(t), 0);
  setState("ready", `Ready: ${m.name}, ${count.toLocaleString()} parameters, ${m.optimizer.name} after `
    + `${state.trainer.stepCount} steps in Python; ${state.spec.count.toLocaleString()} Fashion-MNIST test images. `
    + "Press Fine-tune, or draw your own examples below.");
  $("train").onclick = () => fineTune().catch(fail);
  $("stop").onclick = () => { state.stop = true; $("stop").disabled = true; };
  $("download").onclick = download;
  window.demoReady = true;
}

function fail(error) {
  $("error-message").textContent = error.message;
  $("error-fix").innerHTML = error.fix ? "Fix: <code></code>, then reload this page." : "";
  if (error.fix) $("error-fix").querySelector("code").textContent = error.fix;
  $("error-title").textContent = window.demoReady ? "Something went wrong." : "The demo cannot start.";
  setState("error", "Stopped by the error above.");
  window.demoError = String(error.message);
  console.error(error);
}

main().catch(fail);
