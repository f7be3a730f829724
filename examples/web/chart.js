// The demo page's live chart: each step's loss and batch accuracy (smoothed over 10 steps) on one canvas.

/**
 * Draw `history` ({loss, accuracy} per step) on `canvas`.
 * @param {HTMLCanvasElement} canvas
 * @param {{loss: number, accuracy: number}[]} history
 */
export function drawChart(canvas, history) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 70, right: 70, top: 30, bottom: 50 };
  g.clearRect(0, 0, width, height);
  g.font = "22px system-ui";
  g.strokeStyle = "#ccc";
  g.lineWidth = 1;
  g.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  if (history.length === 0) {
    g.fillStyle = "#888";
    g.fillText("Loss and accuracy appear here while the model fine-tunes.", pad.left + 20, height / 2);
    return;
  }
  const maxLoss = Math.max(...history.map((p) => p.loss), 1e-6);
  const x = (i) => pad.left + ((width - pad.left - pad.right) * i) / Math.max(history.length - 1, 1);
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
  line(smooth(history.map((p) => p.loss)), maxLoss, "#1565c0");
  line(smooth(history.map((p) => p.accuracy)), 1, "#2e7d32");
  g.fillStyle = "#1565c0";
  g.fillText(`training loss (0 – ${maxLoss.toFixed(2)})`, pad.left + 10, pad.top + 28);
  g.fillStyle = "#2e7d32";
  g.fillText("training batch accuracy (0 – 100%)", pad.left + 10, pad.top + 56);
  g.fillStyle = "#555";
  g.fillText(`step ${history.length}`, width - pad.right - 120, height - 15);
  g.fillText("step 1", pad.left, height - 15);
}
