"""tools/bench.py's PyTorch eager worker: the benchmark's model trained the plain PyTorch way, timed per epoch.

Runs in a venv with torch and numpy (`--torch-python`); prints one JSON line (see _harness.report).
Usage: python tools/bench_peers/torch_peer.py --data DIR --epochs 10 --seed 12 [--model mlp|cnn] [--dropout 0.5]
"""

from __future__ import annotations

import platform
import time

import _harness
import torch
from torch import nn


def build(model: str, dropout: float, seed: int) -> nn.Sequential:
    weights = _harness.initial_weights(model, seed)
    if model == "mlp":
        layers = [nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)]
    else:
        layers = [
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(6 * 6 * 64, 128),
            nn.ReLU(),
            *([nn.Dropout(dropout)] if dropout else []),
            nn.Linear(128, 10),
        ]
        # torch flattens (channels, height, width); the shared kernel's rows are (height, width, channels)
        kind, kernel, bias = weights[2]
        weights[2] = (kind, kernel.reshape(6, 6, 64, 128).transpose(2, 0, 1, 3).reshape(-1, 128), bias)
    trainable = [layer for layer in layers if isinstance(layer, nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        for layer, (kind, kernel, bias) in zip(trainable, weights, strict=True):
            # dense (in, out) -> (out, in); convolution (h, w, in, out) -> (out, in, h, w)
            layer.weight.copy_(torch.from_numpy(kernel.T if kind == "dense" else kernel.transpose(3, 2, 0, 1)))
            layer.bias.copy_(torch.from_numpy(bias))
    return nn.Sequential(*layers)


def main() -> None:
    args = _harness.parse_args(__doc__.splitlines()[0])
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y, xt, yt = (torch.from_numpy(a) for a in _harness.load_data(args.data))
    if args.model == "cnn":  # channels first, as torch's convolutions take them; once, before timing
        x, xt = x.permute(0, 3, 1, 2).contiguous(), xt.permute(0, 3, 1, 2).contiguous()
    model = build(args.model, args.dropout, args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    epoch_times = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x))
        correct = 0
        for start in range(0, len(x), _harness.BATCH):
            index = order[start : start + _harness.BATCH]
            xb, yb = x[index], y[index]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == yb).sum())  # the same per-batch metric work onnxtrain does
        epoch_times.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        predict_times = []
        for _ in range(4):  # the first is the warm-up, and gives the accuracy
            started = time.perf_counter()
            predicted = torch.cat([model(xt[s : s + 1024]).argmax(1) for s in range(0, len(xt), 1024)])
            predict_times.append(time.perf_counter() - started)
        accuracy = float((predicted == yt).float().mean())
    model.train()
    xb, yb = x[: _harness.BATCH].clone(), y[: _harness.BATCH].clone()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()

    _harness.report(
        {
            "epoch_times": epoch_times,
            "accuracy": accuracy,
            "predict_s": min(predict_times[1:]),
            "bare_step_s": _harness.bare_step_s(step),
            "peak_rss_mib": _harness.peak_rss_mib(),
            "runtime": f"torch {torch.__version__}, Python {platform.python_version()}",
        }
    )


if __name__ == "__main__":
    main()
