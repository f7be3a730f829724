"""Write a torch.onnx dynamo export (default `optimize=True`) of modules built with `bias=False`, with torch's SGD
steps: tests/data/onnx_dynamo_names/no_bias_dynamo_default.{onnx,npz,json}, in the layout of
tools/onnx_fixtures_dynamo_names.py (whose `train` writes it).

For `nn.Conv2d(..., bias=False)` the exporter writes a zero bias for the aten call's `None`, and onnxscript's
RemoveOptionalBiasFromConv drops it again, recording its rule on the node as it does for a real zero bias. The
test (tests/test_foreign_no_bias.py, without torch) checks that from_onnx restores no bias torch's modules never
had, warns about none, and still restores the zero bias a module has:

- `no_bias_dynamo_default`: Conv2d(1, 4, 3, bias=False), ReLU, ConvTranspose2d(4, 2, 2, stride=2, bias=False), ReLU,
  Flatten, Linear(128, 8, bias=False), ReLU and Linear(8, 3) whose bias is zero (`nn.init.zeros_`: dropped, then
  restored).

Usage: /work/venv-torch/bin/python tools/onnx_dynamo_no_bias_fixtures.py  (torch, onnx, onnxscript)
"""

from __future__ import annotations

import sys

import onnx
import torch
from onnx_fixtures_dynamo_names import train
from torch import nn


class NoBiasNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, bias=False)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False)
        self.proj = nn.Linear(128, 8, bias=False)
        self.fc = nn.Linear(8, 3)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.up(torch.relu(self.conv(x)))).flatten(1)
        return self.fc(torch.relu(self.proj(hidden)))


def main() -> None:
    print(f"torch {torch.__version__}, onnx {onnx.__version__}", file=sys.stderr)
    torch.manual_seed(2)
    torch.set_num_threads(1)
    train("no_bias_dynamo_default", NoBiasNet(), (1, 6, 6), 3)


if __name__ == "__main__":
    main()
