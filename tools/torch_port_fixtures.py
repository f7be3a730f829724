"""Write a small PyTorch CNN's weights, input and outputs for tests/test_layers_torch_port.py (which ports the
weights into onnxtrain as docs/layers.md, "Porting weights from PyTorch", says, without torch):
tests/data/torch_port/cnn.npz.

The network: Conv2d(2, 4, 3, padding=1) -> BatchNorm2d(4) (eval mode, with running statistics set) -> ReLU ->
Conv2d(4, 3, 3, stride=2) -> flatten -> Linear(12, 5), on x of shape (4, 2, 6, 5) (NCHW). The file holds `x` (NCHW),
every `state_dict()` entry by its torch name (`conv1.weight`, `bn.running_mean`, `fc.weight`, ...), `logits` (the
eval-mode output) and, for the moving statistics, `train_batch` (NCHW, 8 examples of 4 channels) with
`train_running_mean` / `train_running_var`: a fresh BatchNorm2d(4) (momentum 0.1) after one train-mode call on it.
For the padding at stride 2, `strided.weight`, `strided.bias`, `strided_x` (2, 2, 6, 6) and `strided_y`: a
Conv2d(2, 3, 3, stride=2, padding=1) and its output, whose padding is not Keras' "same" on an even size.

Usage: /work/venv-torch/bin/python tools/torch_port_fixtures.py  (torch 2.13)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_port" / "cnn.npz"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 3, 3, stride=2)
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(torch.relu(self.bn(self.conv1(x))))
        return self.fc(torch.flatten(h, 1))


def main() -> None:
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        net.bn.running_var.copy_(torch.tensor([0.5, 1.5, 2.0, 0.8]))
        net.bn.weight.copy_(torch.tensor([1.2, 0.8, 1.0, 0.5]))
        net.bn.bias.copy_(torch.tensor([0.1, 0.0, -0.1, 0.2]))
    net.eval()
    x = torch.randn(4, 2, 6, 5)
    with torch.no_grad():
        logits = net(x)
    arrays = {name: value.numpy() for name, value in net.state_dict().items() if value.dtype == torch.float32}
    batch = torch.randn(8, 4, 3, 3) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(1, 4, 1, 1) + 1.0
    bn = nn.BatchNorm2d(4)  # momentum 0.1, train mode
    with torch.no_grad():
        bn(batch)
    strided = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    strided_x = torch.randn(2, 2, 6, 6)
    with torch.no_grad():
        strided_y = strided(strided_x)
    arrays |= {f"strided.{name}": value.numpy() for name, value in strided.state_dict().items()}
    arrays |= {"strided_x": strided_x.numpy(), "strided_y": strided_y.numpy()}
    arrays |= {"x": x.numpy(), "logits": logits.numpy(), "train_batch": batch.numpy()}
    arrays |= {"train_running_mean": bn.running_mean.numpy(), "train_running_var": bn.running_var.numpy()}
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
