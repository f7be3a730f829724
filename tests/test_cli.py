"""The `onnxtrain` command line, run as `python -m onnxtrain` in subprocesses (started concurrently).

A tiny config (4x4 "images", 3 classes, .npz data) is trained once per module; the other sub-commands and
every error case then run against its output.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from onnxtrain import History
from onnxtrain.cli import main
from onnxtrain.cli._examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["train", "evaluate", "predict", "export", "artifacts", "summary"]

TINY_CONFIG = """
name = "tiny"
seed = 3
optimizer = { name = "adam", learning_rate = 0.01 }
loss = "softmax_cross_entropy_with_logits"
metric = "accuracy"
epochs = 3
batch_size = 8

[data]
train = "train.npz"
test = "test.npz"
validation = "test"

[[layers]]
type = "Input"
shape = [4, 4, 1]

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 3
activation = "linear"
"""


class Result(NamedTuple):
    rc: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "onnxtrain", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_many(commands: dict[str, tuple[str, ...]], cwd: Path) -> dict[str, Result]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {key: pool.submit(run_cli, *args, cwd=cwd) for key, args in commands.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with the tiny config, its data, a trained run in run/, and some bad inputs."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 4, 4, 1)).astype(np.uint8)
    y = (x[:, 0, 0, 0] > 128).astype(np.int64) + (x[:, 1, 1, 0] > 200).astype(np.int64)
    np.savez(root / "train.npz", x=x[:48], y=y[:48], class_names=np.array(["zero", "one", "two"]))
    np.savez(root / "test.npz", x=x[48:], y=y[48:])
    np.savez(root / "no_labels.npz", x=x)
    np.save(root / "batch.npy", x[:3])
    np.save(root / "wrong_shape.npy", np.zeros((2, 5, 5, 1), np.uint8))
    np.savez(root / "wrong_shape.npz", x=np.zeros((5, 3, 3, 1), np.float32), y=np.zeros(5, np.int64))
    (root / "tiny.toml").write_text(TINY_CONFIG)
    (root / "tiny.json").write_text(json.dumps(tomllib.loads(TINY_CONFIG)))
    (root / "garbage.onnx").write_bytes(b"this is not a protobuf")
    (root / "empty.onnx").write_bytes(b"")
    (root / "notes.txt").write_text("hello")
    (root / "latin1.json").write_bytes(b'{"name": "tiny", \xbf}')  # not UTF-8 at position 17
    (root / "nul.toml").write_bytes(b'name = "tiny"\x00\x01')
    from PIL import Image

    Image.fromarray(x[50, :, :, 0]).save(root / "image.png")
    Image.fromarray(np.zeros((9, 7), np.uint8)).save(root / "big.png")
    bad = {
        "unknown_key.toml": TINY_CONFIG.replace("epochs = 3", "epoch = 3"),
        "bad_syntax.toml": TINY_CONFIG.replace('name = "tiny"', "name = tiny"),
        "unknown_layer.toml": TINY_CONFIG.replace('type = "Flatten"', 'type = "Flattn"'),
        "bad_layer_arg.toml": TINY_CONFIG.replace("units = 3", "unit = 3"),
        "bad_units.toml": TINY_CONFIG.replace("units = 3", "units = 0"),
        "no_labels.toml": TINY_CONFIG.replace('train = "train.npz"', 'train = "no_labels.npz"'),
        "config.yaml": TINY_CONFIG,
    }
    for name, text in bad.items():
        (root / name).write_text(text)
    result = run_cli("train", "tiny.toml", "--output", "run", cwd=root)
    assert result.rc == 0, result.err
    (root / "train_stdout.txt").write_text(result.out)
    return root


# --- train ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_train_writes_model_csv_and_png_and_says_where(work):
    out = (work / "train_stdout.txt").read_text()
    assert "\r" not in out and "\x1b" not in out  # stdout is a pipe: plain lines
    assert re.search(r"Epoch 3/3 - 6 batches - .* - val_accuracy: ", out)
    assert re.search(r"Test \(12 examples\): loss: \d\.\d{4} - accuracy: \d\.\d{4}", out)
    for label, path in (
        ("model", "run/model/"),
        ("history", "run/history.csv"),
        ("curves", "run/curves.png"),
    ):
        assert re.search(rf"^  {label} +{re.escape(path)}$", out, re.MULTILINE)
    assert {p.name for p in (work / "run" / "model").iterdir()} >= {"model.onnx", "config.json", "checkpoint"}
    history = History.from_csv(work / "run" / "history.csv")
    assert history.epochs == [1, 2, 3] and list(history.history) == [  # Keras 3's order: sorted
        "accuracy",
        "loss",
        "val_accuracy",
        "val_loss",
    ]
    assert (work / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_train_defaults_to_a_new_folder_and_takes_overrides(work):
    results = run_many(
        {
            "json": ("train", "tiny.json", "--epochs", "1", "--batch-size", "16", "--verbose", "2"),
            "again": ("train", "tiny.json", "--epochs", "1", "--verbose", "0"),
        },
        cwd=work,
    )
    assert all(r.rc == 0 for r in results.values()), [r.err for r in results.values()]
    runs = sorted((work / "runs").iterdir())
    assert len(runs) == 2 and all(re.fullmatch(r"tiny-\d{8}-\d{6}(-\d+)?", p.name) for p in runs)
    assert "Epoch 1/1 - 3 batches" in results["json"].out and "Epoch" not in results["again"].out
    assert all((run / "model" / "model.onnx").exists() and (run / "curves.png").exists() for run in runs)


@pytest.mark.slow
def test_train_on_a_terminal_shows_a_bar(work):
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxtrain", "train", "tiny.toml", "--output", "tty", "--epochs", "2"],
        cwd=work, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode()
    assert "\r" in text and "6/6 [" in text and "100%|" in text
    figures = ", ".join(rf"{key}: \d\.\d{{4}}" for key in ("accuracy", "loss", "val_accuracy", "val_loss"))
    assert re.search(rf"Epoch 2/2: 100%\|.*{figures}\]", text)  # in Keras' bar's order


def test_the_example_config_file_is_the_built_in_example():
    with open(ROOT / "examples" / "fashion_mlp.toml", "rb") as f:
        assert tomllib.load(f) == EXAMPLES["fashion-mlp"]


# --- the other sub-commands -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def commands(work) -> dict[str, Result]:
    return run_many(
        {
            "evaluate": ("evaluate", "run/model", "--data", "test.npz"),
            "predict_npy": ("predict", "run/model", "--input", "batch.npy"),
            "predict_png": ("predict", "run/model/model.onnx", "--input", "image.png"),
            "evaluate_portable": ("evaluate", "run/model", "--data", "test.npz", "--engine", "portable"),
            "export": ("export", "run/model", "exported.onnx", "--opset", "18"),
            "export_portable": ("export", "run/model", "exported_portable.onnx", "--engine", "portable"),
            "artifacts_config": ("artifacts", "tiny.toml", "arts_config"),
            "artifacts_model": ("artifacts", "run/model", "arts_model"),
            "artifacts_opset_21": ("artifacts", "run/model", "arts_21", "--opset", "21"),
            "summary_dir": ("summary", "run/model"),
            "summary_onnx": ("summary", "run/model/model.onnx"),
            "module_help": ("--help",),
            "version": ("--version",),
        },
        cwd=work,
    )


@pytest.mark.slow
def test_python_m_onnxtrain_lists_every_command(commands):
    assert commands["module_help"].rc == 0 and all(c in commands["module_help"].out for c in COMMANDS)
    assert commands["version"].out.startswith("onnxtrain ")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    # In-process (the parser is the console script's): one subprocess per --help would only test argparse.
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: onnxtrain {command}")


@pytest.mark.slow
def test_evaluate_prints_the_figures(commands):
    assert commands["evaluate"].rc == 0
    assert re.fullmatch(r"loss: \d\.\d{4} - accuracy: \d\.\d{4}  \(12 examples\)\n", commands["evaluate"].out)


@pytest.mark.slow
def test_predict_names_the_classes_of_a_batch_and_an_image(commands, work):
    lines = commands["predict_npy"].out.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"\d: (zero|one|two) \(\d\) p=\d\.\d{4}", line) for line in lines)
    assert re.fullmatch(r"0: (zero|one|two) \(\d\) p=\d\.\d{4}\n", commands["predict_png"].out)


@pytest.mark.slow
def test_export_writes_the_requested_opset(commands, work):
    import onnx

    assert commands["export"].rc == 0 and "exported.onnx" in commands["export"].out
    model = onnx.load(str(work / "exported.onnx"))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


@pytest.mark.slow
def test_artifacts_from_a_config_and_from_a_saved_model(commands, work):
    for name in ("arts_config", "arts_model"):
        assert commands[f"artifacts_{name.removeprefix('arts_')}"].rc == 0
        files = {p.name for p in (work / name).iterdir()}
        assert {"training_model.onnx", "eval_model.onnx", "optimizer_model.onnx", "checkpoint"} <= files


@pytest.mark.slow
def test_summary_of_a_directory_and_of_an_onnx_file(commands):
    directory, onnx_file = commands["summary_dir"].out, commands["summary_onnx"].out
    assert "dense_1(Dense)" in directory and "Total params: 51" in directory and "Epochs trained: 3" in directory
    for text in (directory, onnx_file):
        assert "opsets: ai.onnx 17" in text and "Parameters: 51 in 2 initializers" in text
        assert re.search(r"input +float32 \[batch, 4, 4, 1\]", text) and re.search(r"probabilities +float32", text)
        assert re.search(r"ONNX file: .*model\.onnx \(\d+\.\d KB\)", text)


@pytest.mark.slow
def test_evaluate_and_export_take_the_engine_to_load_with(commands, work):
    import onnx

    figures = [re.findall(r"\d\.\d{4}", commands[key].out) for key in ("evaluate", "evaluate_portable")]
    assert commands["evaluate_portable"].rc == 0 and len(figures[1]) == 2
    assert np.allclose(np.array(figures[0], float), np.array(figures[1], float), atol=2e-4)
    assert commands["export_portable"].rc == 0, commands["export_portable"].err
    exported = onnx.load(str(work / "exported_portable.onnx"))
    assert [o.name for o in exported.graph.output] == ["logits", "probabilities"]


@pytest.mark.slow
def test_artifacts_with_a_newer_opset_get_the_oldest_ir_version_that_holds_it(commands, work):
    import onnx

    assert commands["artifacts_opset_21"].rc == 0, commands["artifacts_opset_21"].err
    model = onnx.load(str(work / "arts_21" / "training_model.onnx"))
    assert model.ir_version == 10
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [21]


def test_evaluate_help_does_not_speak_of_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "epoch" not in text and "2 one line with the figures" in text
    assert "--engine {auto,ort-training,portable}" in text


# --- error cases ----------------------------------------------------------------------------------------
ERRORS: list[tuple[str, tuple[str, ...], int, str]] = [
    # (id, arguments, exit status, pattern the one stderr line must match)
    ("no_command", (), 2, r"onnxtrain: error: the following arguments are required: COMMAND"),
    ("unknown_command", ("fit",), 2, r"onnxtrain: error: argument COMMAND: invalid choice: 'fit'"),
    (
        "train_nothing",
        ("train",),
        1,
        r"train: error: train takes a CONFIG file, --example NAME or --resume DIR \(one of them\)$",
    ),
    (
        "train_both",
        ("train", "tiny.toml", "--example", "fashion-mlp"),
        1,
        r"train: error: train takes a CONFIG",
    ),
    (
        "train_zero_epochs",
        ("train", "tiny.toml", "--epochs", "0"),
        2,
        r"--epochs: expected a positive integer",
    ),
    ("train_bad_example", ("train", "--example", "mnist"), 2, r"--example: invalid choice: 'mnist'"),
    ("train_missing_config", ("train", "missing.toml"), 1, r"Cannot read 'missing.toml': No such file or directory"),
    ("train_yaml", ("train", "config.yaml"), 1, r"the config must be a \.toml or \.json file"),
    (
        "train_unknown_key",
        ("train", "unknown_key.toml"),
        1,
        r"has an unknown key 'epoch' \(did you mean 'epochs'\?\)\. Valid keys: ",
    ),
    ("train_bad_toml", ("train", "bad_syntax.toml"), 1, r"'bad_syntax.toml' is not valid TOML: "),
    ("train_unknown_layer", ("train", "unknown_layer.toml"), 1, r"Could not interpret layer class 'Flattn'"),
    (
        "train_bad_layer_arg",
        ("train", "bad_layer_arg.toml"),
        1,
        r"layers\[2\] \(Dense\): .*unexpected keyword",
    ),
    ("train_bad_units", ("train", "bad_units.toml"), 1, r"Dense\(units=\.\.\.\) expects a positive int"),
    ("train_no_labels", ("train", "no_labels.toml"), 1, r"needs arrays named x and y\. Found: \['x'\]"),
    (
        "train_output_exists",
        ("train", "tiny.toml", "--output", "run"),
        1,
        r"run/model' already exists\. Pass --over",
    ),
    ("evaluate_missing_model", ("evaluate", "nowhere", "--data", "test.npz"), 1, r"nowhere"),
    (
        "evaluate_onnx_only",
        ("evaluate", "exported_copy.onnx", "--data", "test.npz"),
        1,
        r"inference-only ONNX",
    ),
    ("evaluate_no_data", ("evaluate", "run/model"), 2, r"the following arguments are required: --data"),
    (
        "evaluate_bad_data",
        ("evaluate", "run/model", "--data", "test.csv"),
        1,
        r"--data expects 'fashion-mnist",
    ),
    (
        "predict_wrong_shape",
        ("predict", "run/model", "--input", "wrong_shape.npy"),
        1,
        r"--input 'wrong_shape.npy' does not fit the model: x expects shape \[None, 4,",
    ),
    (
        "predict_image_size",
        ("predict", "run/model", "--input", "big.png"),
        1,
        r"is 7x9 pixels; the model expects 4x4",
    ),
    (
        "predict_text_input",
        ("predict", "run/model", "--input", "notes.txt"),
        1,
        r"--input expects a \.npy array",
    ),
    (
        "evaluate_wrong_shape",
        ("evaluate", "run/model", "--data", "wrong_shape.npz"),
        1,
        r"--data 'wrong_shape.npz' does not fit the model: dataset.x expects shape \[None, 4, 4, 1\]",
    ),
    (
        "evaluate_bad_engine",
        ("evaluate", "run/model", "--data", "test.npz", "--engine", "ort"),
        2,
        r"argument --engine: invalid choice: 'ort'",
    ),
    (
        "evaluate_not_a_model",
        ("evaluate", "many_files", "--data", "test.npz"),
        1,
        r"'many_files' is not a saved onnxtrain model: config.json is missing \(it holds 'f00.txt', 'f01.txt', "
        r".*'f09.txt' and 5 more\)",
    ),
    (
        "predict_garbage_model",
        ("predict", "garbage.onnx", "--input", "batch.npy"),
        1,
        r"garbage\.onnx is not an ONNX model \(it does not parse as an ONNX ModelProto\)",
    ),
    (
        "export_exists",
        ("export", "run/model", "tiny.toml"),
        1,
        r"'tiny.toml' already exists\. Pass --overwrite",
    ),
    (
        "export_bad_opset",
        ("export", "run/model", "x.onnx", "--opset", "abc"),
        2,
        r"--opset: expected a positive",
    ),
    (
        "artifacts_onnx_only",
        ("artifacts", "exported_copy.onnx", "out"),
        1,
        r"needs a model config \(\.toml/\.json\)",
    ),
    (
        "export_ir_too_old",
        ("export", "run/model", "x.onnx", "--opset", "21", "--ir-version", "8"),
        1,
        r"--ir-version expects an int in \[10, \d+\] for opset 21 .*Received: --ir-version 8",
    ),
    (
        "train_overwrite_foreign_folder",
        ("train", "tiny.toml", "--output", "foreign", "--overwrite"),
        1,
        r"--overwrite replaces 'foreign/model' only when it holds nothing but a saved model \(checkpoint, "
        r"config.json, model.onnx\); it also holds 'notes.txt'\. .*Nothing was trained",
    ),
    ("train_output_is_a_file", ("train", "tiny.toml", "--output", "notes.txt"), 1, r"--output expects a folder"),
    (
        "summary_not_a_model",
        ("summary", "many_files"),
        1,
        r"'many_files' is not a saved onnxtrain model: config.json is missing \(it holds 'f00.txt', .* and 5 more\)",
    ),
    (
        "artifacts_opset_too_new",
        ("artifacts", "run/model", "arts_new", "--opset", "22"),
        1,
        r"ONNX Runtime could not build training artifacts with opset 22 and IR version 10: .+\. Try an older --opset",
    ),
    (
        "train_onnx_model",
        ("train", "exported_copy.onnx"),
        1,
        r"'exported_copy\.onnx' is an ONNX model, not a run config: `onnxtrain train` builds and trains a model that a "
        r"\.toml or \.json config \(see examples/fashion_mlp\.toml\) or --example NAME describes\. To fine-tune this "
        r"one: onnxtrain finetune exported_copy\.onnx --data DATA --output DIR; to inspect it: onnxtrain summary "
        r"exported_copy\.onnx$",
    ),
    (
        "train_onnx_of_a_saved_model",
        ("train", "run/model/model.onnx"),
        1,
        r"'run/model/model\.onnx' is an ONNX model, not a run config: .*To fine-tune this one: onnxtrain finetune "
        r"run/model/model\.onnx --data DATA --output DIR; to inspect it: onnxtrain summary run/model/model\.onnx; to "
        r"continue training the saved model it belongs "
        r"to: onnxtrain train --resume run/model --epochs N$",
    ),
    (
        "train_saved_model",
        ("train", "run/model"),
        1,
        r"'run/model' is a saved model directory, not a run config; to continue training a saved model use --resume "
        r"run/model \(with --epochs N, the number of epochs to add\)$",
    ),
    (
        "train_run_folder",
        ("train", "run"),
        1,
        r"'run' is the output folder of a run, not a run config; to continue training its model use --resume run/model "
        r"\(with --epochs N, the number of epochs to add\)$",
    ),
    (
        "resume_and_config",
        ("train", "tiny.toml", "--resume", "run/model", "--epochs", "1"),
        1,
        r"train takes a CONFIG file, --example NAME or --resume DIR \(one of them\)$",
    ),
    (
        "resume_without_epochs",
        ("train", "--resume", "run/model"),
        1,
        r"--resume needs --epochs N: how many epochs to train on top of the 3 that 'run/model' has trained$",
    ),
    (
        "resume_with_seed",
        ("train", "--resume", "run/model", "--epochs", "1", "--seed", "4"),
        1,
        r"--seed cannot change a resumed model: its shuffling continues from the seed it was trained with \(3\)$",
    ),
    (
        "resume_not_a_model",
        ("train", "--resume", "many_files", "--epochs", "1"),
        1,
        r"'many_files' is not a saved onnxtrain model: config\.json is missing",
    ),
    (
        "resume_data_does_not_fit",
        ("train", "--resume", "run/model", "--epochs", "1", "--data", "wrong_shape.npz"),
        1,
        r"--data 'wrong_shape\.npz' does not fit the model: dataset\.x expects shape \[None, 4, 4, 1\]",
    ),
    (
        "data_without_resume",
        ("train", "tiny.toml", "--data", "train.npz"),
        1,
        r"--data goes with --resume DIR; a run config names its data in its \[data\] table$",
    ),
    ("train_onnx_named_json", ("train", "onnx_model.json"), 1, r"'onnx_model\.json' is an ONNX model, not a run"),
    (
        "train_not_utf8",
        ("train", "latin1.json"),
        1,
        r"'latin1\.json' is not a run config: it is not UTF-8 text \(byte 0xbf at position 17\)\. train expects a "
        r"run config, a \.toml or \.json file \(see examples/fashion_mlp\.toml\), or --example NAME$",
    ),
    ("train_binary", ("train", "nul.toml"), 1, r"'nul\.toml' is not a run config: it is a binary file \(a NUL byte at"),
    ("train_folder", ("train", "many_files"), 1, r"'many_files' is a folder, not a run config: train expects a run"),
    (
        "summary_garbage",
        ("summary", "garbage.onnx"),
        1,
        r"'garbage\.onnx' is not an ONNX model \(it does not parse as an ONNX ModelProto\)\.",
    ),
    ("summary_empty_onnx", ("summary", "empty.onnx"), 1, r"'empty\.onnx' is empty \(0 bytes\)\."),
    (
        "evaluate_garbage",
        ("evaluate", "garbage.onnx", "--data", "train.npz"),
        1,
        r"'garbage\.onnx' is not an ONNX file \(it does not parse as an ONNX ModelProto\) nor a saved model directory",
    ),
    (
        "export_garbage",
        ("export", "garbage.onnx", "out.onnx"),
        1,
        r"'garbage\.onnx' is not an ONNX file \(it does not parse as an ONNX ModelProto\) nor a saved model directory",
    ),
    (
        "summary_missing",
        ("summary", "nowhere.onnx"),
        1,
        r"'nowhere.onnx' does not exist: summary takes a saved model directory or an \.onnx file$",
    ),
]


@pytest.fixture(scope="module")
def errors(work) -> dict[str, Result]:
    import shutil

    shutil.copy(work / "run" / "model" / "model.onnx", work / "exported_copy.onnx")  # an .onnx with no config
    shutil.copy(work / "run" / "model" / "model.onnx", work / "onnx_model.json")  # an ONNX model misnamed
    (work / "foreign" / "model").mkdir(parents=True)  # --overwrite must not replace a folder holding notes
    (work / "foreign" / "model" / "notes.txt").write_text("keep me")
    (work / "many_files").mkdir()
    for i in range(15):
        (work / "many_files" / f"f{i:02}.txt").write_text("")
    folders = lambda: {p.name for p in work.rglob("*") if p.is_dir()}  # noqa: E731
    before = folders()
    results = run_many({case: args for case, args, _, _ in ERRORS}, cwd=work)
    results["new_folders"] = Result(0, "\n".join(sorted(folders() - before)), "")
    return results


@pytest.mark.slow
def test_failed_commands_leave_no_folders_behind(errors):
    assert errors["new_folders"].out == ""


@pytest.mark.parametrize(("case", "args", "status", "pattern"), ERRORS, ids=[e[0] for e in ERRORS])
@pytest.mark.slow
def test_bad_input_exits_non_zero_with_one_line(errors, case, args, status, pattern):
    result = errors[case]
    assert result.rc == status, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    command = args[0] if args and args[0] in COMMANDS else None
    assert lines[0].startswith(f"onnxtrain {command}: error: " if command else "onnxtrain: error: ")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.slow
def test_overwrite_refuses_a_foreign_model_folder_before_training(errors, work):
    assert errors["train_overwrite_foreign_folder"].out == ""  # not even "Training ..."
    assert sorted(str(p.relative_to(work / "foreign")) for p in (work / "foreign").rglob("*")) == [
        "model",
        "model/notes.txt",
    ]


# --- resuming a saved model -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resumed(work) -> dict[str, Result]:
    """A 1-epoch run resumed by 1 epoch (its data found in the run's run.json), beside a 2-epoch run."""
    results = run_many(
        {
            "one": ("train", "tiny.toml", "--epochs", "1", "--output", "one", "--verbose", "0"),
            "two": ("train", "tiny.toml", "--epochs", "2", "--output", "two", "--verbose", "0"),
        },
        cwd=work,
    )
    assert results["one"].rc == 0, results["one"].err
    results["resumed"] = run_cli(
        "train", "--resume", "one/model", "--epochs", "1", "--output", "resumed", "--verbose", "2", cwd=work
    )
    return results


@pytest.mark.slow
def test_resuming_a_one_epoch_run_by_one_epoch_gives_the_two_epoch_run(resumed, work):
    from onnxtrain import load_model

    assert resumed["two"].rc == 0 and resumed["resumed"].rc == 0, resumed["resumed"].err
    with load_model(work / "two" / "model", compile=False) as straight:
        expected = straight.get_weights()
    with load_model(work / "resumed" / "model", compile=False) as again:
        weights = again.get_weights()
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(weights[name], value, rtol=0, atol=1e-6, err_msg=name)
    out = resumed["resumed"].out
    assert re.search(
        r"^Resuming tiny \(seed 3\) after 1 epoch: 1 more on 48 examples of .*train\.npz \(from .*run\.json\), batch "
        r"size 8 \(from .*run\.json\); writing to resumed/$",
        out,
        re.M,
    )
    assert "Epoch 2/2 - 6 batches" in out and "Epoch 1/" not in out
    assert re.search(r"^  config +resumed/run\.json$", out, re.MULTILINE)
    # The history continues the first run's: the same figures as the 2-epoch run's.
    history, straight_history = (History.from_csv(work / name / "history.csv") for name in ("resumed", "two"))
    assert history.epochs == [1, 2] and list(history.history) == list(straight_history.history)
    for key, values in straight_history.history.items():
        np.testing.assert_allclose(history.history[key], values, rtol=0, atol=1e-6, err_msg=key)
    saved = json.loads((work / "resumed" / "model" / "config.json").read_text())
    assert saved["epochs_trained"] == 2 and saved["optimizer_state_saved"] is True
    run = json.loads((work / "resumed" / "run.json").read_text())  # a config that trains the same model anew
    assert run["epochs"] == 2 and run["data"]["train"] == str(work / "train.npz")
    assert run["data"]["validation"] == "test"


@pytest.mark.slow
def test_a_model_saved_without_a_run_config_resumes_on_the_data_given(work, tmp_path):
    from onnxtrain import load_model

    with load_model(work / "run" / "model") as model:
        model.save(tmp_path / "saved")  # model.save: no run.json, no optimizer state
    refused = run_cli("train", "--resume", str(tmp_path / "saved"), "--epochs", "1", cwd=work)
    assert refused.rc == 1 and refused.out == ""
    assert re.fullmatch(
        r"onnxtrain train: error: --resume: no run config \(run\.json, which onnxtrain train writes beside model/\) "
        r"says what '.*saved' was trained on; pass --data 'fashion-mnist\[:train\]', a \.npz file or a folder of "
        r"images\n",
        refused.err,
    )
    done = run_cli(
        "train", "--resume", str(tmp_path / "saved"), "--epochs", "1", "--data", "train.npz",
        "--output", str(tmp_path / "out"), "--verbose", "0", cwd=work,
    )  # fmt: skip
    assert done.rc == 0, done.err
    assert re.fullmatch(
        r"onnxtrain train: note: '.*saved' was saved without its optimizer state: training goes on with a fresh "
        r"adam optimizer, not exactly where it stopped\.\n",
        done.err,
    )
    assert json.loads((tmp_path / "out" / "model" / "config.json").read_text())["epochs_trained"] == 4
    assert History.from_csv(tmp_path / "out" / "history.csv").epochs == [4]
    record = json.loads((tmp_path / "out" / "run.json").read_text())  # what the next resume trains on
    assert record["data"] == {"train": str(work / "train.npz")} and record["batch_size"] == 32
    assert record["resumed_from"] == str((tmp_path / "saved").resolve()) and "layers" not in record


@pytest.mark.slow
def test_the_commands_take_a_run_folder_for_the_model_in_it(work, tmp_path):
    """A run's output folder (what train --resume takes too) stands for its model/ folder."""
    summary = run_cli("summary", "run", cwd=work)
    assert summary.rc == 0 and "Epochs trained: 3" in summary.out, summary.err
    evaluate = run_cli("evaluate", "run", "--data", "train.npz", cwd=work)
    assert evaluate.rc == 0 and "examples)" in evaluate.out, evaluate.err
    export = run_cli("export", "run", str(tmp_path / "run.onnx"), cwd=work)
    assert export.rc == 0 and (tmp_path / "run.onnx").is_file(), export.err


def test_train_help_explains_resume(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--resume DIR" in text and "how many more epochs to train" in text


# --- config checks, in-process: a refused config prints nothing and creates no folder --------------------
CONFIG_ERRORS: list[tuple[str, dict[str, str], str]] = [
    # (id, {text in TINY_CONFIG: its replacement}, pattern of the error line)
    ("zero_epochs", {"epochs = 3": "epochs = 0"}, r"c\.toml: epochs expects a positive int\. Received: epochs=0$"),
    ("bool_epochs", {"epochs = 3": "epochs = true"}, r"epochs expects a positive int\. Received: epochs=True$"),
    (
        "text_batch_size",
        {"batch_size = 8": 'batch_size = "8"'},
        r"c\.toml: batch_size expects a positive int\. Received: batch_size='8'$",
    ),
    (
        "split_out_of_range",
        {"epochs = 3": "epochs = 3\nvalidation_split = 1.0"},
        r"c\.toml: validation_split expects a number in \[0, 1\), e\.g\. 0\.1\. Received: validation_split=1\.0$",
    ),
    (
        "bool_split",
        {"epochs = 3": "epochs = 3\nvalidation_split = true"},
        r"c\.toml: validation_split expects a number in \[0, 1\), e\.g\. 0\.1\. Received: validation_split=True$",
    ),
    (
        "split_and_validation",
        {"epochs = 3": "epochs = 3\nvalidation_split = 0.2"},
        r"c\.toml sets both validation_split = 0\.2 and \[data\] validation = 'test'; .*remove the other\.$",
    ),
    (
        "metric_and_metrics",
        {'metric = "accuracy"': 'metric = "accuracy"\nmetrics = ["accuracy"]'},
        r"c\.toml sets both `metric` and `metrics`; .*Received: metric='accuracy', metrics=\['accuracy'\]$",
    ),
    (
        "layer_type_list",
        {'type = "Input"': 'type = ["Input"]'},
        r"c\.toml: layers\[0\] expects `type` to be a layer class name \(a str such as \"Dense\"\)\. "
        r"Received: type=\['Input'\]$",
    ),
    (
        "name_escapes",
        {'name = "tiny"': 'name = "../escape"'},
        r"c\.toml: name names the run folder runs/NAME-TIME, so it takes 1 to 100 letters, digits, '_', '-' and "
        r"'\.', .*Received: name='\.\./escape'$",
    ),
    ("name_nests", {'name = "tiny"': 'name = "a/b"'}, r"Received: name='a/b'$"),
    ("name_backslash", {'name = "tiny"': 'name = "a\\\\b"'}, r"Received: name='a\\\\b'$"),
    ("name_dots", {'name = "tiny"': 'name = ".."'}, r"Received: name='\.\.'$"),
    (
        "name_number",
        {'name = "tiny"': "name = 7"},
        r'c\.toml: name expects a str such as "fashion_mlp"\. Received: name=7',
    ),
    (
        "data_does_not_fit",
        {"shape = [4, 4, 1]": "shape = [5, 5, 1]"},
        r"\[data\] train = '.*train\.npz' does not fit the model: dataset\.x expects shape \[None, 5, 5, 1\]",
    ),
    (
        "split_leaves_nothing",
        {'validation = "test"': "", "epochs = 3": "epochs = 3\nvalidation_split = 0.001"},
        r"validation_split=0\.001 leaves no training or no validation examples out of 48\.$",
    ),
]


def _config_text(work: Path, changes: dict[str, str]) -> str:
    text = TINY_CONFIG
    for old, new in changes.items():
        text = text.replace(old, new)
    for name in ("train.npz", "test.npz"):  # the config lives elsewhere: name the data absolutely
        text = text.replace(f'"{name}"', json.dumps(str(work / name)))
    return text


@pytest.mark.parametrize(("case", "change", "pattern"), CONFIG_ERRORS, ids=[e[0] for e in CONFIG_ERRORS])
@pytest.mark.slow
def test_a_refused_config_prints_nothing_and_creates_no_folder(
    work, tmp_path, monkeypatch, capsys, case, change, pattern
):
    (tmp_path / "c.toml").write_text(_config_text(work, change))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "c.toml", "--verbose", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("onnxtrain train: error: ") and re.search(pattern, err.strip()), err
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]  # no runs/NAME-TIME


@pytest.mark.slow
def test_a_json_config_with_a_null_name_is_refused(work, tmp_path, monkeypatch, capsys):
    config = tomllib.loads(_config_text(work, {}))
    (tmp_path / "c.json").write_text(json.dumps({**config, "name": None}))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "c.json"]) == 1
    assert re.fullmatch(
        r'onnxtrain train: error: c\.json: name expects a str such as "fashion_mlp"\. Received: name=None '
        r"\(NoneType\)\n",
        capsys.readouterr().err,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


# --- an inference-only install (plain onnxruntime), simulated in-process ----------------------------------
@pytest.fixture
def inference_only(monkeypatch) -> None:
    """Make onnxtrain see no training API, as with plain `onnxruntime` installed."""
    from onnxtrain import _ort_training
    from onnxtrain.errors import RuntimeSetupError

    def missing() -> None:
        raise RuntimeSetupError("The installed onnxruntime is an inference-only build: it cannot train. (simulated)")

    monkeypatch.setattr(_ort_training, "_training_api", missing)


@pytest.fixture
def trained_by_ort_training(work, tmp_path) -> tuple[Path, Path]:
    """run/model trained one more epoch with the ort-training engine, saved without and with ORT's optimizer state
    (which only a training build reads)."""
    from onnxtrain import load_model

    with load_model(work / "run" / "model", engine="ort-training", optimizer="adam") as model:
        with np.load(work / "train.npz") as data:
            model.fit(data["x"], data["y"], epochs=1, batch_size=8, verbose=0)
        return model.save(tmp_path / "ort"), model.save(tmp_path / "with_state", save_optimizer_state=True)


@pytest.mark.training
@pytest.mark.slow
def test_evaluate_and_export_fall_back_to_the_portable_engine_without_a_training_build(
    work, trained_by_ort_training, tmp_path, monkeypatch, capsys, request
):
    import onnx

    ort_model, saved_with_state = trained_by_ort_training
    assert json.loads((ort_model / "config.json").read_text())["compile"]["engine"] == "ort-training"
    request.getfixturevalue("inference_only")
    monkeypatch.chdir(work)
    for model in (str(ort_model), str(saved_with_state)):
        assert main(["evaluate", model, "--data", "test.npz"]) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert re.fullmatch(r"loss: \d\.\d{4} - accuracy: \d\.\d{4}  \(12 examples\)\n", out)
        assert re.fullmatch(r"onnxtrain evaluate: note: [^\n]*ort-training engine[^\n]*portable engine[^\n]*\n", err)

    target = tmp_path / "inference_only.onnx"
    assert main(["export", str(ort_model), str(target)]) == 0, capsys.readouterr().err
    exported = onnx.load(str(target))
    assert [o.name for o in exported.graph.output] == ["logits", "probabilities"]
    metadata = {p.key: p.value for p in exported.metadata_props}
    assert json.loads(metadata["class_names"]) == ["zero", "one", "two"]
    assert metadata["onnxtrain.loss"] == "softmax_cross_entropy_with_logits"
    capsys.readouterr()


@pytest.mark.training
@pytest.mark.slow
def test_an_explicit_engine_and_artifacts_still_need_the_training_build(
    work, tmp_path, monkeypatch, capsys, inference_only
):
    monkeypatch.chdir(work)
    assert main(["evaluate", "run/model", "--data", "test.npz", "--engine", "ort-training"]) == 1
    assert re.fullmatch(
        r"onnxtrain evaluate: error: .*inference-only build: it cannot train\..*\n", capsys.readouterr().err
    )
    assert main(["artifacts", "run/model", str(tmp_path / "arts")]) == 1
    assert "inference-only build" in capsys.readouterr().err and not (tmp_path / "arts").exists()


# --- the built-in examples: fashion-cnn ------------------------------------------------------------------
def test_the_cnn_example_config_file_is_the_built_in_example():
    with open(ROOT / "examples" / "fashion_cnn.toml", "rb") as f:
        assert tomllib.load(f) == EXAMPLES["fashion-cnn"]


def test_train_help_lists_every_example(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--example {fashion-cnn,fashion-mlp}" in text
    assert "fashion-cnn (a LeNet-style CNN), fashion-mlp (the tutorial's MLP)" in text


@pytest.mark.slow
def test_train_runs_a_small_cnn_config(tmp_path, monkeypatch, capsys):
    """The fashion-cnn example's layer kinds, on 8x8 images: the real run is a benchmark (about 40 s an epoch)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 8, 8, 1)).astype(np.uint8)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    np.savez(tmp_path / "train.npz", x=x[:32], y=y[:32])
    np.savez(tmp_path / "test.npz", x=x[32:], y=y[32:])
    config = {
        **EXAMPLES["fashion-cnn"],
        "name": "small_cnn",
        "data": {"train": "train.npz", "test": "test.npz", "validation": "test"},
    }
    config["layers"] = [
        {**entry, "shape": [8, 8, 1]} if entry["type"] == "Input" else
        {**entry, "filters": 4} if entry["type"] == "Conv2D" else
        {**entry, "units": 8} if entry.get("units") == 128 else
        {**entry, "units": 2} if entry.get("units") == 10 else entry
        for entry in config["layers"]
    ]  # fmt: skip
    (tmp_path / "cnn.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "cnn.json", "--epochs", "1", "--batch-size", "8", "--output", "out", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Training small_cnn (seed 42) on 32 examples; writing to out/")
    assert re.search(r"Test \(8 examples\): loss: \d\.\d{4} - accuracy: \d\.\d{4}", out), out
    assert (tmp_path / "out" / "model" / "model.onnx").is_file()


# --- messages that name the command's options -------------------------------------------------------------
def test_bundle_into_an_existing_folder_names_overwrite_not_the_python_argument(tmp_path, capsys):
    from onnxtrain import Sequential
    from onnxtrain.layers import Dense, Input

    with Sequential.of(Input(4), Dense(3)) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.save(tmp_path / "saved")
    out = tmp_path / "bundle"
    out.mkdir()
    assert main(["bundle", str(tmp_path / "saved"), str(out)]) == 1
    err = capsys.readouterr().err
    expected = f"'{out}' already exists. Pass --overwrite to replace it, or another OUT_DIR."
    assert err == f"onnxtrain bundle: error: {expected}\n"
    (out / "notes.txt").write_text("keep me")
    assert main(["bundle", str(tmp_path / "saved"), str(out), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "writing_mode" not in err
    pattern = r"--overwrite replaces '.*bundle' only when it holds nothing but a training bundle \(bundle\.json, "
    assert re.search(pattern + r".*\); it also holds 'notes\.txt'\.", err), err
    assert (out / "notes.txt").read_text() == "keep me"


# --- train --workers N: which process reports an error ----------------------------------------------------
class _FakeWorkerWorld:
    """The MPI world of one process that `train --workers 2` started: records finalize and abort."""

    def __init__(self, rank: int):
        self.rank, self.size = rank, 2
        self.calls: list[str] = []

    def finalize(self) -> None:
        self.calls.append("finalize")

    def abort(self, code: int = 1) -> None:
        self.calls.append(f"abort {code}")
        raise SystemExit(code)  # MPICommunicator.abort never returns


def _worker(monkeypatch, rank: int, error: Exception) -> _FakeWorkerWorld:
    from onnxtrain.cli import _train

    world = _FakeWorkerWorld(rank)
    monkeypatch.setattr(_train, "worker_count", lambda: 2)
    monkeypatch.setattr(_train, "init_world", lambda: world)

    def failing(args):
        raise error

    monkeypatch.setattr(_train, "_train", failing)
    return world


@pytest.mark.parametrize("rank", [0, 1])
def test_an_error_every_worker_raises_alike_is_reported_once_by_process_zero(monkeypatch, capsys, rank):
    from onnxtrain.errors import DataParallelError

    message = "A data-parallel fit over 2 processes expects batch_size >= 2 (a row of each batch for each process)."
    world = _worker(monkeypatch, rank, DataParallelError(message))
    assert main(["train", "tiny.toml", "--workers", "2"]) == 1
    assert capsys.readouterr().err == ("" if rank else f"onnxtrain train: error: {message}\n")
    assert world.calls == ["finalize"]  # every process ends MPI: no abort, no "error in process R"


def test_an_error_of_one_worker_is_reported_once_with_its_process(monkeypatch, capsys):
    from onnxtrain.errors import InvalidArgumentError

    world = _worker(monkeypatch, 1, InvalidArgumentError("'two/model' already exists."))
    with pytest.raises(SystemExit):
        main(["train", "tiny.toml", "--workers", "2"])
    assert capsys.readouterr().err == "onnxtrain train: error in process 1: 'two/model' already exists.\n"
    assert world.calls == ["abort 1"]


def test_export_to_a_folder_names_the_command_s_argument(tmp_path, capsys):
    from onnxtrain import Sequential
    from onnxtrain.layers import Dense, Input

    with Sequential.of(Input(4), Dense(3)) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.save(tmp_path / "saved")
    (tmp_path / "out").mkdir()
    assert main(["export", str(tmp_path / "saved"), str(tmp_path / "out"), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"onnxtrain export: error: export expects OUT.onnx, a file path such as 'model.onnx'. Received: "
        f"'{tmp_path / 'out'}', which is a folder\n"
    )


# --- models of several outputs, and what the help says ---------------------------------------------------------
@pytest.fixture
def several_outputs(tmp_path) -> Path:
    """A saved model of two outputs, `kind` (3 classes, softmax cross-entropy) and `size` (2 values, mse), beside
    x.npy (3 examples) and data.npz (x, and the labels of `kind` as y)."""
    from onnxtrain import Model
    from onnxtrain.layers import Dense, Input

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    kind = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    inputs = Input(4)
    hidden = Dense(8, activation="relu")(inputs)
    outputs = [Dense(3, name="kind")(hidden), Dense(2, activation="linear", name="size")(hidden)]
    with Model(inputs, outputs, seed=0) as model:
        model.compile(optimizer="adam", loss={"kind": "softmax_cross_entropy_with_logits", "size": "mse"})
        model.fit(x, [kind, x[:, 2:]], epochs=1, batch_size=10, verbose=0)
        model.save(tmp_path / "model", save_optimizer_state=True)
        expected = model.predict(x[:3])
    np.save(tmp_path / "x.npy", x[:3])
    np.savez(tmp_path / "data.npz", x=x, y=kind)
    np.save(tmp_path / "expected_kind.npy", expected[0])
    np.save(tmp_path / "expected_size.npy", expected[1])
    return tmp_path


def test_predict_prints_every_output_of_a_model_of_several_by_name(several_outputs, capsys):
    kinds, sizes = np.load(several_outputs / "expected_kind.npy"), np.load(several_outputs / "expected_size.npy")
    assert main(["predict", str(several_outputs / "model"), "--input", str(several_outputs / "x.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        match = re.fullmatch(rf"{i}: kind: class (\d) p=(0\.\d{{4}}); size: \[(.+)\]", line)
        assert match is not None, line
        assert int(match.group(1)) == kinds[i]
        np.testing.assert_allclose(np.array(match.group(3).split(), float), sizes[i], atol=1e-3)


@pytest.mark.parametrize(
    ("command", "python"),
    [(["evaluate", "MODEL", "--data", "DATA"], "evaluate"), (["train", "--resume", "MODEL", "--data", "DATA"], "fit")],
    ids=["evaluate", "resume"],
)
def test_evaluate_and_resume_refuse_a_model_of_several_outputs(several_outputs, capsys, command, python):
    model, data = str(several_outputs / "model"), str(several_outputs / "data.npz")
    args = [model if a == "MODEL" else data if a == "DATA" else a for a in command]
    assert main([*args, *(["--epochs", "1"] if "train" in args else [])]) == 1
    name = "train --resume" if "train" in args else "evaluate"
    assert capsys.readouterr().err == (
        f"onnxtrain {args[0]}: error: {name} takes a model of one output; '{model}' has 2 outputs ['kind', 'size'], "
        f"and a .npz holds one label array y. Use the Python API, which takes one per output: model.{python}(x, "
        "{'kind': y_kind, 'size': y_size})\n"
    )


def test_predict_help_names_every_image_format(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "an image (.png, .jpg, .jpeg, .bmp, .gif)" in text


def test_finetune_help_says_how_to_resume(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "run.json (the data, batch size and seed: onnxtrain train --resume DIR --epochs N continues the run" in text


@pytest.mark.parametrize(
    ("activation", "loss"),
    [("sigmoid", "binary_crossentropy"), ("linear", {"name": "binary_crossentropy", "from_logits": True})],
    ids=["probabilities", "from_logits"],
)
def test_predict_decides_a_one_unit_binary_model_by_its_probability(tmp_path, capsys, activation, loss):
    """One sigmoid unit is P(class 1): the class is 1 above one half (an argmax of its one column said 0 always)."""
    from onnxtrain import InferenceModel, Sequential, losses
    from onnxtrain.layers import Dense, Input

    x = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
    with Sequential.of(Input(4), Dense(1, activation=activation), seed=2) as model:
        model.compile(optimizer="sgd", loss=losses.get(loss))
        model.export(tmp_path / "binary.onnx")
    np.save(tmp_path / "x.npy", x)
    expected = InferenceModel.load(tmp_path / "binary.onnx")
    classes, p1 = expected.predict(x), expected.predict_softly(x).ravel()
    assert 0 < classes.sum() < len(classes)  # both classes occur
    assert main(["predict", str(tmp_path / "binary.onnx"), "--input", str(tmp_path / "x.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{i}: class {c} ({c}) p={p if c else 1 - p:.4f}" for i, (c, p) in enumerate(zip(classes, p1, strict=True))
    ]


def test_predict_prints_a_class_per_step_of_a_tagger(tmp_path, capsys):
    """A per-step classifier's (N, steps, classes) probabilities: one class per step, not an argmax of them all."""
    from onnxtrain import InferenceModel, Sequential
    from onnxtrain.layers import LSTM, Dense, Embedding, Input

    ids = np.random.default_rng(4).integers(1, 9, size=(5, 6)).astype(np.int64)
    with Sequential.of(Input(6, dtype="int64"), Embedding(9, 4), LSTM(3, return_sequences=True), Dense(7), seed=2) as m:
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        m.export(tmp_path / "tagger.onnx")
    np.save(tmp_path / "ids.npy", ids)
    steps = InferenceModel.load(tmp_path / "tagger.onnx").predict_softly(ids).argmax(axis=-1)
    assert main(["predict", str(tmp_path / "tagger.onnx"), "--input", str(tmp_path / "ids.npy")]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{i}: {' '.join(map(str, row))}" for i, row in enumerate(steps)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--opset", "5"], r"--opset expects an int in \[13, \d+\]\. Received: --opset 5$"),
        (
            ["--opset", "17", "--ir-version", "3"],
            r"--ir-version expects an int in \[8, \d+\] for opset 17 .*--ir-version 3$",
        ),
    ],
)
def test_export_names_its_options_for_a_version_out_of_range(work, tmp_path, capsys, options, message):
    assert main(["export", str(work / "run" / "model"), str(tmp_path / "out.onnx"), *options]) == 1
    error = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"onnxtrain export: error: {message}", error), error


def test_a_worker_other_than_process_zero_restores_the_signal_handlers_it_ignored(monkeypatch, capsys):
    """The other processes of --workers N ignore Ctrl-C and SIGTERM while they train; called in a process that goes
    on (this one), the handlers come back: an ignored SIGINT would be inherited by every process started after."""
    import signal

    from onnxtrain.errors import DataParallelError

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    _worker(monkeypatch, 1, DataParallelError("A data-parallel fit over 2 processes expects batch_size >= 2."))
    assert main(["train", "tiny.toml", "--workers", "2"]) == 1
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
