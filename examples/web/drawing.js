// The demo page's drawing pad: a large canvas the user draws on, white on black, and its 28×28 image scaled the way
// Fashion-MNIST's were made: the drawing's bounding box resized so its longer edge spans the 28 pixels, centred.

export const SIZE = 28;
const SUBSAMPLES = 8; // per axis: each of the 28×28 pixels averages 8×8 samples of the large canvas

export class DrawingPad {
  /**
   * @param {HTMLCanvasElement} canvas the large canvas (its width/height attributes are its resolution)
   * @param {() => void} onChange called after each stroke segment and after clear()
   */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.g = canvas.getContext("2d", { willReadFrequently: true });
    this.brush = 24;
    this.version = 0;
    this.onChange = onChange;
    this.clear();
    let last = null;
    const point = (event) => {
      const box = canvas.getBoundingClientRect();
      const x = ((event.clientX - box.left) * canvas.width) / box.width;
      return [x, ((event.clientY - box.top) * canvas.height) / box.height];
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (canvas.dataset.disabled === "true") return;
      canvas.setPointerCapture(event.pointerId);
      last = point(event);
      this._stroke(last, last);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (last === null) return;
      const next = point(event);
      this._stroke(last, next);
      last = next;
    });
    const end = () => { last = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  _stroke(from, to) {
    const g = this.g;
    g.strokeStyle = "white";
    g.lineWidth = this.brush;
    g.lineCap = g.lineJoin = "round";
    g.beginPath();
    g.moveTo(...from);
    g.lineTo(...to);
    g.stroke();
    this.empty = false;
    this.version++;
    this.onChange();
  }

  clear() {
    this.g.fillStyle = "black";
    this.g.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
    this.version++;
    this.onChange();
  }

  /**
   * The drawing as 28×28 uint8 pixels (row by row, white on black), or null when nothing is drawn.
   * @returns {Uint8Array | null}
   */
  pixels() {
    if (this.empty) return null;
    const { width, height } = this.canvas;
    const data = this.g.getImageData(0, 0, width, height).data;
    let [left, top, right, bottom] = [width, height, -1, -1];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (data[(y * width + x) * 4] === 0) continue;
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
    if (right < 0) return null;
    const [w, h] = [right - left + 1, bottom - top + 1];
    const scale = SIZE / Math.max(w, h);
    const [dx, dy] = [(SIZE - w * scale) / 2, (SIZE - h * scale) / 2];
    const out = new Uint8Array(SIZE * SIZE);
    for (let ty = 0; ty < SIZE; ty++) {
      for (let tx = 0; tx < SIZE; tx++) {
        let sum = 0;
        for (let i = 0; i < SUBSAMPLES; i++) {
          const sy = top + (ty + (i + 0.5) / SUBSAMPLES - dy) / scale;
          if (sy < top || sy >= bottom + 1) continue;
          for (let j = 0; j < SUBSAMPLES; j++) {
            const sx = left + (tx + (j + 0.5) / SUBSAMPLES - dx) / scale;
            if (sx < left || sx >= right + 1) continue;
            sum += data[(Math.floor(sy) * width + Math.floor(sx)) * 4];
          }
        }
        out[ty * SIZE + tx] = Math.round(sum / (SUBSAMPLES * SUBSAMPLES));
      }
    }
    return out;
  }
}

/**
 * Paint 28×28 uint8 pixels (white on black, as the model sees them) on a 28×28 canvas.
 * @param {HTMLCanvasElement} canvas
 * @param {Uint8Array | null} pixels
 */
export function paint(canvas, pixels) {
  canvas.width = canvas.height = SIZE;
  const g = canvas.getContext("2d");
  const picture = g.createImageData(SIZE, SIZE);
  for (let p = 0; p < SIZE * SIZE; p++) {
    const v = pixels === null ? 0 : pixels[p];
    picture.data.set([v, v, v, 255], p * 4);
  }
  g.putImageData(picture, 0, 0);
}
