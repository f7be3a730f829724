"""Numpy references of the seed model's maths, shared by the tests."""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mlp_forward(
    weights: dict[str, np.ndarray], x: np.ndarray, names: list[str], activations: list[str]
) -> list[np.ndarray]:
    """Activations of every Dense layer (float64), the input flattened first."""
    h = x.reshape(len(x), -1).astype(np.float64)
    outs = [h]
    for name, act in zip(names, activations, strict=True):
        h = h @ weights[f"{name}.kernel"].astype(np.float64) + weights[f"{name}.bias"].astype(np.float64)
        h = relu(h) if act == "relu" else h
        outs.append(h)
    return outs


def mlp_gradients(
    weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, names: list[str], activations: list[str]
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean softmax cross-entropy and its gradients (hand-written backward pass, float64)."""
    outs = mlp_forward(weights, x, names, activations)
    n = len(x)
    p = softmax(outs[-1])
    loss = float(-np.log(p[np.arange(n), y]).mean())
    grad = p.copy()
    grad[np.arange(n), y] -= 1.0
    grad /= n
    grads = {}
    for i in range(len(names) - 1, -1, -1):
        if activations[i] == "relu":
            grad = grad * (outs[i + 1] > 0)
        grads[f"{names[i]}.kernel"] = outs[i].T @ grad
        grads[f"{names[i]}.bias"] = grad.sum(axis=0)
        grad = grad @ weights[f"{names[i]}.kernel"].astype(np.float64).T
    return loss, grads


def adam_step(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam with bias correction, epsilon added to sqrt(v) (TensorFlow's and so KotlinDL's form, which is also
    what ONNX Runtime's AdamW computes): w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return w, m, v


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf)(x)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": relu,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": softmax,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "relu6": lambda x: np.clip(x, 0, 6),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "hard_silu": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "exponential": np.exp,
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "log_softmax": lambda x: np.log(softmax(x)),
}
