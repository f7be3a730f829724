// The demo page: load the fashion-mlp training bundle (data/, written by prepare.py), fine-tune it on a slice of
// the Fashion-MNIST test images with onnxtrain-js and onnxruntime-web, chart loss and accuracy, download the .onnx.
// ?bundle=URL&data=URL point it at another bundle and images (the tests do).

import * as ort from "../../js/node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs";
import { Trainer } from "../../js/src/index.js";

const params = new URLSearchParams(location.search);
const BUNDLE = params.get("bundle") ?? "data/bundle/";
const DATA = params.get("data") ?? "data/";
const $ = (id) => document.getElementById(id);

const state = { trainer: null, images: null, labels: null, spec: null, stop: false, history: [], bundleUrl: null };

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} (did you run examples/web/prepare.py?)`);
  return new Uint8Array(await response.arrayBuffer());
}

// onnxruntime-web takes its thread count when it first starts, so a change reloads the page (?threads=N).
// More than one thread needs a cross-origin isolated page (COOP/COEP headers), which python -m http.server
// does not send.
function setUpThreads() {
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

async function openTrainer() {
  state.trainer = await Trainer.load(ort, BUNDLE, { sessionOptions: { executionProviders: ["wasm"] } });
}

/** Images [start, start + n) as uint8 pixels and int labels. */
function slice(start, n) {
  const size = state.spec.shape.reduce((a, b) => a * b, 1);
  return [state.images.subarray(start * size, (start + n) * size), state.labels.subarray(start, start + n)];
}

async function accuracy(count) {
  let right = 0;
  for (let start = 0; start < count; start += 1000) {
    const n = Math.min(1000, count - start);
    const result = await state.trainer.evaluate(...slice(start, n));
    right += result.accuracy * n;
  }
  return right / count;
}

function drawChart() {
  const canvas = $("chart");
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 70, right: 70, top: 30, bottom: 50 };
  g.clearRect(0, 0, width, height);
  g.font = "22px system-ui";
  g.strokeStyle = "#ccc";
  g.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  const points = state.history;
  if (points.length === 0) return;
  const maxLoss = Math.max(...points.map((p) => p.loss), 1e-6);
  const x = (i) => pad.left + ((width - pad.left - pad.right) * i) / Math.max(points.length - 1, 1);
  const y = (v, top) => pad.top + (height - pad.top - pad.bottom) * (1 - v / top);
  const line = (values, top, colour) => {
    g.strokeStyle = colour;
    g.lineWidth = 3;
    g.beginPath();
    values.forEach((v, i) => (i === 0 ? g.moveTo(x(i), y(v, top)) : g.lineTo(x(i), y(v, top))));
    g.stroke();
  };
  const smooth = (values) => values.map((_, i) => {
    const window = values.slice(Math.max(0, i - 9), i + 1);
    return window.reduce((a, b) => a + b, 0) / window.length;
  });
  line(smooth(points.map((p) => p.loss)), maxLoss, "#1565c0");
  line(smooth(points.map((p) => p.accuracy)), 1, "#2e7d32");
  g.fillStyle = "#1565c0";
  g.fillText(`loss (0 – ${maxLoss.toFixed(2)})`, pad.left + 10, pad.top + 28);
  g.fillStyle = "#2e7d32";
  g.fillText("batch accuracy (0 – 100%)", pad.left + 10, pad.top + 56);
  g.fillStyle = "#555";
  g.fillText(`step ${points.length}`, width - pad.right - 120, height - 15);
  g.fillText("step 1", pad.left, height - 15);
}

async function drawGallery() {
  const [images, labels] = slice(0, 16);
  const { logits } = await state.trainer.evaluate(images, labels);
  const names = state.spec.class_names;
  const classes = logits.length / labels.length;
  $("gallery").replaceChildren(...Array.from(labels, (label, i) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    const picture = canvas.getContext("2d").createImageData(28, 28);
    for (let p = 0; p < 784; p++) {
      const v = 255 - images[i * 784 + p];
      picture.data.set([v, v, v, 255], p * 4);
    }
    canvas.getContext("2d").putImageData(picture, 0, 0);
    const row = logits.subarray(i * classes, (i + 1) * classes);
    const guess = row.indexOf(Math.max(...row));
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = names[guess];
    caption.className = guess === label ? "right" : "wrong";
    caption.title = `true: ${names[label]}`;
    figure.append(canvas, caption);
    return figure;
  }));
}

async function fineTune() {
  const count = Math.min(Number($("count").value), state.spec.count);
  const batch = Number($("batch").value);
  const epochs = Number($("epochs").value); // a second press continues from the weights trained so far
  state.trainer.learningRate = Number($("lr").value);
  state.history = [];
  state.stop = false;
  $("train").disabled = $("download").disabled = true;
  $("stop").disabled = false;
  $("status").textContent = "Measuring the accuracy before fine-tuning…";
  $("before").textContent = `${((await accuracy(count)) * 100).toFixed(2)}%`;
  const start = performance.now();
  let seen = 0;
  outer: for (let epoch = 0; epoch < epochs; epoch++) {
    for (let first = 0; first < count; first += batch) {
      if (state.stop) break outer;
      const n = Math.min(batch, count - first);
      const [x, y] = slice(first, n);
      const { loss, logits } = await state.trainer.step(x, y);
      let right = 0;
      const classes = logits.length / n;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * classes, (i + 1) * classes);
        if (row.indexOf(Math.max(...row)) === y[i]) right++;
      }
      seen += n;
      state.history.push({ loss, accuracy: right / n });
      const seconds = (performance.now() - start) / 1000;
      if (state.history.length % 5 === 0 || first + batch >= count) {
        $("steps").textContent = String(state.history.length);
        $("time").textContent = `${seconds.toFixed(1)} s`;
        $("speed").textContent = Math.round(seen / seconds).toLocaleString();
        $("status").textContent = `Epoch ${epoch + 1}/${epochs}: image ${first + n} of ${count}, loss ${loss.toFixed(4)}`;
        drawChart();
        await new Promise((resolve) => setTimeout(resolve)); // let the page paint
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  $("after").textContent = `${((await accuracy(count)) * 100).toFixed(2)}%`;
  $("status").textContent = `${state.stop ? "Stopped" : "Done"}: ${state.history.length} steps, ${seen.toLocaleString()} images in ${seconds.toFixed(1)} s (${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads > 1 ? "s" : ""}).`;
  window.demoResult = { steps: state.history.length, images: seen, seconds, threads: ort.env.wasm.numThreads,
    before: $("before").textContent, after: $("after").textContent };
  drawChart();
  await drawGallery();
  $("train").disabled = $("download").disabled = false;
  $("stop").disabled = true;
}

function download() {
  const blob = new Blob([state.trainer.exportModel()], { type: "application/octet-stream" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${state.trainer.metadata.name}-finetuned.onnx`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function main() {
  setUpThreads();
  const [spec, images, labels] = await Promise.all([
    fetch(new URL("data.json", new URL(DATA, location.href))).then((r) => {
      if (!r.ok) throw new Error(`${DATA}data.json: HTTP ${r.status} (did you run examples/web/prepare.py?)`);
      return r.json();
    }),
    bytes(new URL("test-images.bin", new URL(DATA, location.href))),
    bytes(new URL("test-labels.bin", new URL(DATA, location.href))),
  ]);
  Object.assign(state, { spec, images, labels });
  $("count").max = String(spec.count);
  $("count").value = String(Math.min(Number($("count").value), spec.count));
  await openTrainer();
  const m = state.trainer.metadata;
  $("lr").value = String(m.learning_rate);
  const params = m.tensors.filter((t) => m.trainable.includes(t.name)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  $("status").textContent = `Loaded ${m.name}: ${params.toLocaleString()} parameters, ${m.optimizer.name} after ${state.trainer.stepCount} steps in Python; ${spec.count.toLocaleString()} test images.`;
  await drawGallery();
  $("controls").disabled = false;
  $("train").onclick = () => fineTune().catch(fail);
  $("stop").onclick = () => { state.stop = true; };
  $("download").onclick = download;
  window.demoReady = true;
}

function fail(error) {
  $("status").textContent = `Error: ${error.message}`;
  window.demoError = String(error);
  console.error(error);
}

main().catch(fail);
