"""tools/bench.py's JAX worker: the benchmark's model in plain JAX with optax, the whole train step one jitted call.

The step (batch gather, forward, value_and_grad, optax's Adam update, the batch's correct count) is one XLA program,
compiled ahead of the timed epochs (its compile time is reported apart, as onnxtrain's compile() is outside its fit),
with the weights and optimizer state donated so XLA updates them in place. Each epoch draws a new order with numpy,
passes each batch's 100 indices to the step (the training set stays on the device) and ends with block_until_ready,
so every step of the epoch is inside its time. Runs on --threads CPUs (see _harness.limit_cpus).

Runs in a venv with jax[cpu], optax and numpy (`--jax-python`); prints one JSON line (see _harness.report).
Usage: python tools/bench_peers/jax_peer.py --data DIR --epochs 10 --seed 12 [--model mlp|cnn] [--dropout 0.5]
"""

from __future__ import annotations

import platform
import time
from functools import partial

import _harness
import numpy as np

ARGS = _harness.parse_args(__doc__.splitlines()[0])
_harness.limit_cpus(ARGS.threads)  # before jax starts its thread pool

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402


def conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: str) -> jax.Array:
    out = jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out + bias


def max_pool(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def forward(params: list[dict], x: jax.Array, model: str, dropout: float, key: jax.Array | None) -> jax.Array:
    """Logits; `key` None is inference (no dropout)."""
    if model == "cnn":
        x = max_pool(jax.nn.relu(conv(x, params[0]["kernel"], params[0]["bias"], "SAME")))
        x = max_pool(jax.nn.relu(conv(x, params[1]["kernel"], params[1]["bias"], "VALID")))
        dense = params[2:]
    else:
        dense = params
    x = x.reshape(x.shape[0], -1)
    for layer in dense[:-1]:
        x = jax.nn.relu(x @ layer["kernel"] + layer["bias"])
    if model == "cnn" and dropout and key is not None:
        keep = jax.random.bernoulli(key, 1.0 - dropout, x.shape)
        x = jnp.where(keep, x / (1.0 - dropout), 0.0)
    return x @ dense[-1]["kernel"] + dense[-1]["bias"]


def main(args=ARGS) -> None:
    x, y, xt, yt = _harness.load_data(args.data)
    x_device, y_device = jax.block_until_ready((jax.device_put(x), jax.device_put(y.astype(np.int32))))
    params = [
        {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
        for _, kernel, bias in _harness.initial_weights(args.model, args.seed)
    ]
    optimizer = optax.adam(1e-3, eps=1e-7)
    opt_state = optimizer.init(params)
    base_key = jax.random.key(args.seed)

    def loss_fn(params, xb, yb, key):
        logits = forward(params, xb, args.model, args.dropout, key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), logits

    def update(params, opt_state, xb, yb, step):
        key = jax.random.fold_in(base_key, step)
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, yb, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        correct = jnp.sum(jnp.argmax(logits, 1) == yb)  # the same per-batch metric work the others do
        return optax.apply_updates(params, updates), opt_state, loss, correct

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, x_all, y_all, index, step):
        return update(params, opt_state, x_all[index], y_all[index], step)

    first = np.arange(_harness.BATCH, dtype=np.int32)
    started = time.perf_counter()
    step_fn = train_step.lower(params, opt_state, x_device, y_device, first, np.int32(0)).compile()
    compile_s = time.perf_counter() - started

    rng = np.random.default_rng(args.seed)
    epoch_times, steps = [], 0
    for _ in range(args.epochs):
        started = time.perf_counter()
        order = rng.permutation(len(x)).astype(np.int32)
        correct = jnp.zeros((), jnp.int32)
        for start in range(0, len(x), _harness.BATCH):
            index = order[start : start + _harness.BATCH]
            params, opt_state, _, batch_correct = step_fn(params, opt_state, x_device, y_device, index, np.int32(steps))
            correct = correct + batch_correct
            steps += 1
        jax.block_until_ready((params, opt_state, correct))
        epoch_times.append(time.perf_counter() - started)

    predict = jax.jit(lambda p, xb: jnp.argmax(forward(p, xb, args.model, args.dropout, None), 1))
    chunks = [xt[s : s + 1024] for s in range(0, len(xt), 1024)]
    predict_times = []
    for _ in range(4):  # the first compiles both chunk shapes, and gives the accuracy
        started = time.perf_counter()
        predicted = np.concatenate([np.asarray(predict(params, chunk)) for chunk in chunks])
        predict_times.append(time.perf_counter() - started)
    accuracy = float(np.mean(predicted == yt))

    # The bare step: the same update on one reused batch, without the gather.
    xb, yb = jax.device_put(x[: _harness.BATCH]), jax.device_put(y[: _harness.BATCH].astype(np.int32))
    bare = jax.jit(update, donate_argnums=(0, 1)).lower(params, opt_state, xb, yb, np.int32(0)).compile()
    state = {"params": params, "opt_state": opt_state}

    def step() -> None:
        state["params"], state["opt_state"], _, _ = bare(state["params"], state["opt_state"], xb, yb, np.int32(0))

    _harness.report(
        {
            "epoch_times": epoch_times,
            "compile_s": compile_s,
            "accuracy": accuracy,
            "predict_s": min(predict_times[1:]),
            "bare_step_s": _harness.bare_step_s(step, sync=lambda: jax.block_until_ready(state["params"])),
            "peak_rss_mib": _harness.peak_rss_mib(),
            "runtime": f"jax {jax.__version__}, optax {optax.__version__}, Python {platform.python_version()}",
        }
    )


if __name__ == "__main__":
    main()
