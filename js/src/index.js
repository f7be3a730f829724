// onnxtrain-js: train an onnxtrain model in the browser (onnxruntime-web) or Node.js (onnxruntime-node) from the
// training bundle Python writes (`model.export_training_bundle(dir)`, `onnxtrain bundle MODEL DIR`).
//
//   import * as ort from "onnxruntime-node";          // or "onnxruntime-web"
//   import { Trainer, sessionOptions } from "onnxtrain-js";
//   const trainer = await Trainer.load(ort, "bundle/"); // a folder path in Node.js, a URL in the browser
//   const { loss } = await trainer.step(x, y);         // x: Float32Array (or uint8 pixels), y: class indices
//   const history = await trainer.fit(xs, ys, { epochs: 3, batchSize: 32, seed: 1 });
//   const classes = await trainer.predict(xs);         // class indices (probabilities: trainer.predictSoftly)
//   const onnxBytes = trainer.exportModel();           // the inference model with the trained weights
//   const session = await ort.InferenceSession.create(onnxBytes, sessionOptions()); // Pad_Fusion off, as Python
//   const pixels = imagePixels(ctx.getImageData(0, 0, 28, 28), 1); // a canvas's RGBA as the model's 1 channel

export { NonFiniteLossError } from "./fit.js";
export { imagePixels } from "./images.js";
export { FORMAT, packState, readBundle, readState, unpackState } from "./bundle.js";
export { readInitializers, writeInitializers } from "./protobuf.js";
export { DISABLED_OPTIMIZERS, sessionOptions } from "./sessions.js";
export { Trainer } from "./trainer.js";
