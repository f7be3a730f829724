"""The fused update (portable/_fused.py; each kernel lives with its optimizer, optimizers/_adam.py, ...): its
kernel against a numpy transcription, and the engine that runs it against the engine whose graph makes the update
(the same values to float32 rounding), for steps, NaN batches, frozen layers, checkpoints, learning rates and its
argument's errors. `gradient_model` is checked here too.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest

from onnxtrain import Sequential, losses
from onnxtrain import optimizers as opt
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers._adam import adam_kernel
from onnxtrain.portable import PortableEngine, _fused
from onnxtrain.portable._graphs import gradient_model

SCE = losses.get("softmax_cross_entropy_with_logits")
needs_numba = pytest.mark.skipif(not _fused.available(), reason="numba is not installed (onnxtrain[fast])")
f32 = np.float32


def mlp(seed: int = 3, frozen_first: bool = False) -> Sequential:
    return Sequential.of(
        Input(4, 3), Flatten(), Dense(16, trainable=not frozen_first), Dense(3, activation="linear"), seed=seed
    )


# One optimizer per kernel and option that changes its code path.
FUSED = [
    opt.SGD(learning_rate=0.1),
    opt.Momentum(learning_rate=0.05),
    opt.Momentum(learning_rate=0.05, use_nesterov=False),
    opt.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    opt.RMSProp(learning_rate=0.01),
    opt.RMSProp(learning_rate=0.01, momentum=0.5),
    opt.RMSProp(learning_rate=0.01, centered=True),
    opt.RMSProp(learning_rate=0.01, momentum=0.5, centered=True),
    opt.AdaDelta(learning_rate=1.0),
    opt.AdaGrad(learning_rate=0.05),
    opt.AdaGradDA(learning_rate=0.05),
    opt.AdaGradDA(learning_rate=0.05, l1_strength=0.0),
    opt.Adam(learning_rate=0.01),
    opt.Adam(learning_rate=0.01, beta2=0.9, amsgrad=True),
    opt.AdamW(learning_rate=0.01, weight_decay=0.1),
    opt.AdamW(learning_rate=0.01, weight_decay=0.1, beta2=0.9, amsgrad=True),
    opt.Adamax(learning_rate=0.01),
    opt.Nadam(learning_rate=0.01),
    opt.Nadam(learning_rate=0.01, beta2=0.9, weight_decay=0.1),
    opt.Ftrl(learning_rate=0.1, l1_regularization_strength=0.001, l2_regularization_strength=0.01),
    opt.Ftrl(
        learning_rate=0.1,
        learning_rate_power=-0.7,
        l2_shrinkage_regularization_strength=0.01,
        initial_accumulator_value=0.1,
    ),
]


def numpy_adam(w, g, m, v, optimizer, lr, t, vhat=None):
    """AdamRule's rescaled update in float32, one numpy operation per ONNX node of the graph (prepare's too); with
    the weight decay first when it is set, and vhat with amsgrad."""
    beta1, beta2, one = f32(optimizer.beta1), f32(optimizer.beta2), f32(1.0)
    rescale = f32((1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2))
    eps = f32(optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2))
    t = f32(t)
    alpha = (f32(lr) * rescale) * np.sqrt(one - np.power(beta2, t)) / (one - np.power(beta1, t))
    if optimizer.weight_decay > 0:
        w = w - w * (f32(lr) * f32(optimizer.weight_decay))
    m = m * beta1 + g
    v = v * beta2 + g * g
    if vhat is None:
        return w - (m * alpha) / (np.sqrt(v) + eps), m, v
    vhat = np.maximum(vhat, v)
    return w - (m * alpha) / (np.sqrt(vhat) + eps), m, v, vhat


def close_to_graph(fused: dict[str, np.ndarray], graph: dict[str, np.ndarray], rtol: float = 1e-5) -> None:
    """Agreement to float32 rounding, relative to each tensor's scale (single elements near 0 differ in many ulps)."""
    assert fused.keys() == graph.keys()
    for name in fused:
        scale = max(float(np.max(np.abs(graph[name]))), 1e-30)
        np.testing.assert_allclose(fused[name], graph[name], rtol=0, atol=rtol * scale, err_msg=name)


@needs_numba
@pytest.mark.parametrize(
    "optimizer",
    [
        opt.Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6),
        opt.Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6, amsgrad=True),
        opt.AdamW(learning_rate=0.01, weight_decay=0.1, beta1=0.8, beta2=0.99, epsilon=1e-6),
        opt.AdamW(learning_rate=0.01, weight_decay=0.1, beta1=0.8, beta2=0.99, epsilon=1e-6, amsgrad=True),
    ],
    ids=repr,
)
def test_kernel_matches_numpy_bit_for_bit(optimizer):
    rng = np.random.default_rng(0)
    n = 10_001  # not a multiple of any vector width
    w, g = rng.normal(size=n).astype(f32), rng.normal(scale=1e-2, size=n).astype(f32)
    m, v = rng.normal(scale=1e-2, size=n).astype(f32), np.abs(rng.normal(scale=1e-4, size=n)).astype(f32)
    state = (m, v, np.abs(rng.normal(scale=1e-4, size=n)).astype(f32)) if optimizer.amsgrad else (m, v)
    for t in (1, 2, 17):
        expected = numpy_adam(w, g, *state[:2], optimizer, 0.01, t, *state[2:])
        _fused.fused_update(optimizer)(w, g, state, t, 0.01)
        for got, want, name in zip((w, *state), expected, ["w", "m", "v", "vhat"], strict=False):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} at t={t}")


@needs_numba
def test_kernel_flushes_subnormal_results_to_zero_as_the_graph_does():
    tiny = f32(_fused.FLT_MIN)
    g = np.array([1e-30, 0, 0, 1.0], f32)  # g*g underflows; m and v decay below the smallest normal float
    m = np.array([0, tiny, 0, 0], f32)
    v = np.array([0, 0, tiny, 0], f32)
    w = np.array([0, 0, 0, 1e-3], f32)
    scalars = np.array([0.5, 0.5, 1e-3, 1.0, 0.0, tiny], f32)  # beta1, beta2, alpha, eps, decay, tiny
    _fused._compiled(adam_kernel)(w, g, m, v, np.zeros(0, f32), scalars)
    assert m[1] == 0 and v[2] == 0 and v[0] == 0  # would be subnormal: tiny/2, tiny/2, 1e-60
    assert m[0] == f32(1e-30) and m[3] == 1 and v[3] == 1  # normal values are kept
    assert np.all(np.abs(w[w != 0]) >= tiny)


@needs_numba
@pytest.mark.parametrize("optimizer", FUSED, ids=repr)
def test_fused_engine_trains_like_the_graph_engine_and_skips_a_nan_batch(blobs, optimizer):
    x, y = blobs
    fused = PortableEngine(mlp().layers, SCE, optimizer)
    graph = PortableEngine(mlp().layers, SCE, optimizer, update="graph")
    assert fused.fused and not graph.fused
    bad = x[:30].copy()
    bad[0, 0, 0] = np.nan
    for step in range(30):
        xb, yb = (bad, y[:30]) if step == 7 else (x[step * 3 : step * 3 + 30], y[step * 3 : step * 3 + 30])
        before = fused.get_weights()
        loss, logits = fused.train_step(xb, yb)
        expected_loss, expected_logits = graph.train_step(xb, yb)
        if step == 7:
            assert math.isnan(loss) and math.isnan(expected_loss)
            for name, value in fused.get_weights().items():
                np.testing.assert_array_equal(value, before[name])  # no update, not even a partial one
        else:
            assert loss == pytest.approx(expected_loss, rel=1e-5)
            np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-5)
    assert fused.step == graph.step == 29
    close_to_graph(fused.get_weights(), graph.get_weights())
    close_to_graph(fused.carried_state(), graph.carried_state())


@needs_numba
@pytest.mark.parametrize("optimizer", [opt.Adam(clip_norm=0.05), opt.Adam(clip_value=0.01)], ids=repr)
def test_fused_engine_clips_gradients_like_the_graph(blobs, optimizer):
    x, y = blobs
    fused, graph = (PortableEngine(mlp().layers, SCE, optimizer, update=u) for u in ("fused", "graph"))
    for start in range(0, 90, 30):
        fused.train_step(x[start : start + 30], y[start : start + 30])
        graph.train_step(x[start : start + 30], y[start : start + 30])
    close_to_graph(fused.get_weights(), graph.get_weights())


@needs_numba
def test_frozen_layers_stay_as_they_are(blobs):
    x, y = blobs
    model = mlp(frozen_first=True)
    engine = PortableEngine(model.layers, SCE, opt.Adam(learning_rate=0.05), update="fused")
    start = engine.get_weights()
    for _ in range(3):
        engine.train_step(x[:30], y[:30])
    after = engine.get_weights()
    np.testing.assert_array_equal(after["dense_1.kernel"], start["dense_1.kernel"])
    np.testing.assert_array_equal(after["dense_1.bias"], start["dense_1.bias"])
    assert not np.array_equal(after["dense_2.kernel"], start["dense_2.kernel"])
    assert set(engine.optimizer_state()) == {f"optimizer.{s}.dense_2.{p}" for s in "mv" for p in ("kernel", "bias")}


@needs_numba
def test_a_model_with_nothing_to_train_still_steps(blobs):
    x, y = blobs
    model = Sequential.of(Input(4, 3), Flatten(), Dense(3, activation="linear", trainable=False), seed=3)
    engine = PortableEngine(model.layers, SCE, opt.Adam(), update="fused")
    start = engine.get_weights()
    engine.train_step(x[:30], y[:30])
    assert engine.step == 1 and engine.optimizer_state() == {}
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(value, start[name])


@needs_numba
def test_checkpoints_move_between_the_fused_and_the_graph_update(blobs):
    x, y = blobs
    first = PortableEngine(mlp().layers, SCE, opt.Adam(learning_rate=0.01), update="fused")
    for start in range(0, 60, 30):
        first.train_step(x[start : start + 30], y[start : start + 30])
    saved = first.checkpoint_bytes(include_optimizer_state=True)
    graph = PortableEngine(mlp(seed=9).layers, SCE, opt.Adam(learning_rate=0.01), resume=saved, update="graph")
    fused = PortableEngine(mlp(seed=9).layers, SCE, opt.Adam(learning_rate=0.01), resume=saved, update="fused")
    assert graph.step == fused.step == first.step == 2
    for name, value in first.get_weights().items():
        np.testing.assert_array_equal(fused.get_weights()[name], value)
        np.testing.assert_array_equal(graph.get_weights()[name], value)
    for name, value in first.carried_state().items():
        np.testing.assert_array_equal(fused.carried_state()[name], value)
    graph.train_step(x[60:90], y[60:90])
    fused.train_step(x[60:90], y[60:90])
    close_to_graph(fused.get_weights(), graph.get_weights())
    assert fused.step == graph.step == 3


@needs_numba
def test_learning_rate_and_set_weights_reach_the_fused_update(blobs):
    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, opt.Adam(learning_rate=0.01), update="fused")
    engine.learning_rate = 0.0
    start = engine.get_weights()
    engine.train_step(x[:30], y[:30])
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(value, start[name])  # lr 0: the weights stay, the moments and step move
    assert engine.step == 1 and np.any(engine.optimizer_state()["optimizer.m.dense_1.kernel"] != 0)
    engine.learning_rate = 0.01
    zeros = {name: np.zeros_like(value) for name, value in start.items()}
    engine.set_weights(zeros)
    _, logits = engine.train_step(x[:30], y[:30])
    np.testing.assert_array_equal(logits, 0)  # the session reads the buffers set_weights wrote
    assert np.any(engine.get_weights()["dense_2.bias"] != 0)  # and the kernel updated those buffers


@needs_numba
def test_saved_train_step_matches_the_fused_engine_to_rounding(blobs, tmp_path):
    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, opt.Adam(learning_rate=0.01), update="fused")
    train_path, _ = engine.save_graphs(tmp_path)  # the whole step, update included, for other runtimes
    feeds: dict[str, np.ndarray] = {**engine.get_weights(), **engine.carried_state()}
    feeds.update(step=np.array(0, np.int64), learning_rate=np.array(0.01, np.float32), input=x[:30], labels=y[:30])
    session = onnxruntime.InferenceSession(str(train_path), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    loss, _ = engine.train_step(x[:30], y[:30])
    assert outputs["loss"] == loss and outputs["updated.step"] == engine.step == 1
    close_to_graph(engine.get_weights(), {n: outputs[f"updated.{n}"] for n in engine.get_weights()})


def test_gradient_model_is_the_train_step_without_its_update(blobs):
    x, y = blobs
    model = mlp()
    graph = gradient_model(model.layers, SCE, opt.SGD(learning_rate=1.0))
    onnx.checker.check_model(graph, full_check=True)
    assert {n.domain for n in graph.graph.node} == {""}
    names = [o.name for o in graph.graph.output]
    assert names == ["loss", "logits", *(f"gradient.{n}" for n in model.get_weights())]
    assert not [n for n in graph.graph.node if n.op_type == "Identity" and n.output[0] in names[2:]]
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    weights = model.get_weights()
    outputs = dict(zip(names, session.run(None, {**weights, "input": x[:30], "labels": y[:30]}), strict=True))
    # SGD at rate 1 makes w - g exactly: the graph engine's step gives the same numbers bit for bit.
    engine = PortableEngine(mlp().layers, SCE, opt.SGD(learning_rate=1.0), update="graph")
    loss, _ = engine.train_step(x[:30], y[:30])
    assert outputs["loss"] == loss
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(value, weights[name] - outputs[f"gradient.{name}"], err_msg=name)


def test_flat_buffer_is_the_float32_values_end_to_end_with_zeros_where_none_are_given():
    shapes = [(2, 3), (3,), (1, 2)]
    values = {"a": np.arange(6, dtype=np.float64).reshape(2, 3) / 3, "c": np.array([[1.5, -2.0]], f32)}
    buffer = _fused.flat_buffer(["a", "b", "c"], shapes, values)
    assert buffer.dtype == f32
    expected = np.concatenate([values["a"].astype(f32).ravel(), np.zeros(3, f32), values["c"].ravel()])
    np.testing.assert_array_equal(buffer, expected)


def test_flat_buffers_start_on_a_cache_line_whatever_their_size():
    # numpy aligns to 16 bytes; the kernels run 7-8% faster on aligned buffers (docs/portable.md, "numba's cache").
    rng = np.random.default_rng(0)
    for count in (1, 3, 17, 1000, 40_001, 266_610, 300_000):
        values = {"w": rng.normal(size=count)}
        weights, zeros = _fused.flat_buffer(["w"], [(count,)], values), _fused.flat_buffer(["g"], [(count,)], {})
        for buffer in (weights, zeros):
            assert buffer.ctypes.data % _fused.ALIGNMENT == 0 and buffer.flags.c_contiguous and buffer.size == count
        np.testing.assert_array_equal(weights, values["w"].astype(f32))
        np.testing.assert_array_equal(zeros, np.zeros(count, f32))


@needs_numba
def test_the_fused_set_up_makes_its_float32_buffers_without_float64_copies(monkeypatch):
    """Adam's weights, two moments and gradients are four float32 buffers of the parameter count. Built once each
    (not as float64 first, nor from float64 zeros), the set-up's allocation peak is what it keeps: about those
    four. It was twice that, the gradients' float64 zeros and concatenation on top of three kept buffers."""
    import tracemalloc

    model = Sequential.of(Input(64), Dense(16000), Dense(10), seed=0)
    buffers = 4 * 4 * sum(v.size for v in model.get_weights().values())  # bytes
    PortableEngine(mlp().layers, SCE, opt.Adam(), threads=1).close()  # numba's kernel loaded before the measurement
    measured: dict[str, int] = {}
    original = PortableEngine._set_up_fused

    def traced(self, *args, **kwargs):
        tracemalloc.start()
        try:
            return original(self, *args, **kwargs)
        finally:
            measured["held"], measured["peak"] = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    monkeypatch.setattr(PortableEngine, "_set_up_fused", traced)
    engine = PortableEngine(model.layers, SCE, opt.Adam(), threads=1)
    assert engine.fused
    assert {b.dtype for b in (engine._flat_weights, engine._flat_grads, *engine._flat_state)} == {np.dtype(f32)}
    assert measured["held"] >= buffers  # the four buffers are kept
    assert measured["peak"] - measured["held"] < 0.1 * buffers, (measured, buffers)  # and nothing transient beside


@needs_numba
def test_flat_buffers_that_do_not_fit_in_memory_are_a_clear_error(monkeypatch):
    def no_memory(*args):
        raise MemoryError("Unable to allocate 1.18 GiB for an array with shape (318000010,) and data type float32")

    monkeypatch.setattr(_fused, "flat_buffer", no_memory)
    count = 4 * 3 * 16 + 16 + 16 * 3 + 3
    expected = (
        r"The portable engine ran out of memory creating the flat buffers of its fused Adam update: 4 of "
        rf"{count:,} values \(the weights, 2 optimizer state slot\(s\) and the gradients\), which take 0\.0 GiB each "
        r"as float32, 0\.0 GiB in all\. Give the layer fewer units or a smaller input, or use an optimizer that keeps "
        r"less state \(SGD keeps none\)\.$"
    )
    with pytest.raises(InvalidArgumentError, match=expected) as caught:
        PortableEngine(mlp().layers, SCE, opt.Adam())
    assert isinstance(caught.value.__cause__, MemoryError)


def test_update_argument_is_checked(monkeypatch):
    layers = mlp().layers
    with pytest.raises(
        InvalidArgumentError, match=r"update expects one of \['auto', 'graph', 'fused'\]\. Received: 'fast'"
    ):
        PortableEngine(layers, SCE, opt.Adam(), update="fast")

    class MyAdam(opt.Adam):  # a subclass may change the rule: the graph's update, which its registered rule makes
        pass

    with pytest.raises(InvalidArgumentError, match=r"no kernel for MyAdam \(only for \['SGD', 'Momentum', 'RMSProp', "):
        PortableEngine(layers, SCE, MyAdam(), update="fused")
    assert not PortableEngine(layers, SCE, MyAdam()).fused  # auto: the graph's update
    monkeypatch.setattr(_fused, "available", lambda: False)
    monkeypatch.setattr(_fused, "unavailable_reason", lambda: "numba is not installed (pip install onnxtrain[fast])")
    with pytest.raises(InvalidArgumentError, match=r"numba is not installed"):
        PortableEngine(layers, SCE, opt.Adam(), update="fused")
    assert not PortableEngine(layers, SCE, opt.Adam()).fused


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("raise ImportError(\"No module named 'numba'\", name='numba')", "numba is not installed (pip install"),
        ("raise ImportError('Numba needs NumPy 2.3 or less', name=None)", "numba does not import: Numba needs NumPy"),
        ("raise OSError('libllvmlite.so: cannot open shared object file')", "numba does not import: OSError: libllvm"),
    ],
)
@pytest.mark.slow
def test_a_numba_that_does_not_import_leaves_the_graph_update_and_says_why(tmp_path, failure, reason):
    (tmp_path / "numba.py").write_text(failure + "\n")  # shadows any installed numba in the child process
    code = (
        "from onnxtrain import Sequential, losses, optimizers; from onnxtrain.layers import Input, Dense;"
        "from onnxtrain.portable import PortableEngine, _fused;"
        "m = Sequential.of(Input(4), Dense(2), seed=1);"
        "print(PortableEngine(m.layers, losses.get('mse'), optimizers.Adam()).fused, _fused.unavailable_reason())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.startswith("False " + reason), result.stdout
    broken = "not installed" not in reason  # installed but failing: one warning says so; absent: silence
    assert ("RuntimeWarning: " + reason in result.stderr) == broken, result.stderr
    assert result.stderr.count("RuntimeWarning") == int(broken), result.stderr


@needs_numba
@pytest.mark.slow
def test_the_kernel_compiles_without_a_writable_cache_directory():
    # numba refuses cache=True where it finds no writable place for the cache (a read-only install and home).
    code = (
        "import numba.core.caching as caching; caching.CacheImpl._locator_classes = [];"
        "import numpy as np; from onnxtrain.portable import _fused; from onnxtrain import optimizers;"
        "w = np.ones(3, np.float32); g, m, v = w.copy(), np.zeros(3, np.float32), np.zeros(3, np.float32);"
        "_fused.fused_update(optimizers.Adam())(w, g, (m, v), 1, 0.1); print(w.tolist())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    w = np.ones(3, np.float32)
    _fused.fused_update(opt.Adam())(w, w.copy(), (np.zeros(3, np.float32), np.zeros(3, np.float32)), 1, 0.1)
    assert result.stdout.strip() == str(w.tolist())  # the uncached compile computes what the cached one does
    assert 0.8999 < w[0] < 0.9001  # 1 - 0.1 * g / (|g| + eps) at t=1


@needs_numba
@pytest.mark.parametrize("optimizer", FUSED, ids=repr)
def test_the_engine_calls_the_one_overload_compiled_for_flat_float32_buffers(blobs, optimizer):
    # numba compiles one overload per argument types: a buffer of another layout or dtype (a strided view, float64)
    # would compile a second, generic one at the first step and cache it beside the first (docs/portable.md,
    # "numba's cache"). The engine's buffers, and the compile-or-load call in `_compiled`, are all this one.
    from numba import types

    x, y = blobs
    engine = PortableEngine(mlp().layers, SCE, optimizer, update="fused")
    engine.train_step(x[:30], y[:30])
    for buffer in (engine._flat_weights, engine._flat_grads, *engine._flat_state):
        assert buffer.dtype == np.float32 and buffer.ndim == 1 and buffer.flags.c_contiguous
        assert buffer.ctypes.data % _fused.ALIGNMENT == 0
    kernel = _fused._compiled(_fused._KERNELS[type(optimizer)](optimizer).kernel)
    assert kernel.signatures == [(types.float32[::1],) * 6]


@needs_numba
@pytest.mark.slow
def test_environment_variable_turns_the_fused_update_off():
    code = (
        "from onnxtrain import Sequential, losses, optimizers; from onnxtrain.layers import Input, Dense;"
        "from onnxtrain.portable import PortableEngine;"
        "m = Sequential.of(Input(4), Dense(2), seed=1);"
        "print(PortableEngine(m.layers, losses.get('mse'), optimizers.Adam()).fused)"
    )
    for value, expected in (("0", "False"), ("1", "True")):
        env = {**os.environ, "ONNXTRAIN_FUSED_UPDATE": value}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == expected
