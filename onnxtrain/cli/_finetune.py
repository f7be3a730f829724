"""`onnxtrain finetune MODEL.onnx`: fine-tune an ONNX model made elsewhere (`onnxtrain.from_onnx`): choose what
trains (--trainable/--frozen), cut it (--outputs), put a new Dense head on it (--head) or train LoRA adapters only
(--lora); writes what `onnxtrain train` writes (model/, run.json, history.csv, curves.png) and the export,
model.onnx."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain import engines, optimizers
from onnxtrain.cli._advice import warnings_as_lines
from onnxtrain.cli._arguments import positive_int
from onnxtrain.cli._config_keys import DEFAULT_LOSS, FINETUNED_FROM
from onnxtrain.cli._data import DatasetLoader, RunData, naming_the_option
from onnxtrain.cli._image_folders import model_target
from onnxtrain.cli._output_folder import check_output
from onnxtrain.cli._run_fit import _fit_and_save, _workers_note
from onnxtrain.cli._train import writing_mode
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.model import Model

EXPORT_FILE = "model.onnx"  # beside model/: the inference model (adapters merged), what deployment takes
LORA_ALPHA = 16.0  # --lora-alpha's default, lora()'s


def cmd_finetune(args: argparse.Namespace) -> int:
    with warnings_as_lines("finetune"):
        return _finetune(args)


def _finetune(args: argparse.Namespace) -> int:
    source = Path(args.model)
    if not source.is_file():
        raise InvalidArgumentError(
            f"finetune expects an .onnx file. Received: '{source}', which "
            f"{'is a folder (for a saved model use onnxtrain train --resume)' if source.is_dir() else 'does not exist'}"
        )
    if args.lora is not None and (args.trainable or args.frozen):
        raise InvalidArgumentError(
            "--lora trains the adapters only (and the --head); --trainable/--frozen choose what trains without "
            f"--lora. Received: --lora {args.lora} with {'--trainable' if args.trainable else '--frozen'}"
        )
    _check_numbers(args)
    output = Path(args.output)
    check_output(output, args.overwrite)
    if (output / EXPORT_FILE).is_dir():
        raise InvalidArgumentError(
            f"'{output / EXPORT_FILE}' is a folder, where finetune writes the exported model. Move it, or pass "
            "another --output."
        )
    if (output / EXPORT_FILE).exists() and not args.overwrite:
        raise InvalidArgumentError(f"'{output / EXPORT_FILE}' already exists. Pass --overwrite or another --output.")
    optimizer = optimizers.get({"name": args.optimizer, "learning_rate": args.learning_rate})  # refused up front
    model = _build(args)  # before the data: a model it cannot import is refused without waiting for that
    model.seed = args.seed  # the shuffling's (from_onnx makes seed 0 models); saved, so --resume continues it
    _refuse_training_nothing(args, model, source)
    with model:
        data = _datasets(args, model)
        _refuse_other_shapes(args, model, data)
        if data.train.input_scale is not None:  # what fit adopts of the training data: the test before reads it too
            model.input_scale = data.train.input_scale
        model.compile(optimizer=optimizer, loss=args.loss, metric="accuracy" if args.loss == DEFAULT_LOSS else None)
        trainable, frozen = model.param_counts()
        total = trainable + frozen
        if data.test is not None:  # before training: test data that does not fit is refused up front
            try:
                result = model.evaluate(data.test)
            except (InvalidArgumentError, InvalidTypeError) as e:
                raise naming_the_option(e, "--test", args.test) from e
            print(f"Test before fine-tuning ({len(data.test)} examples): {result}", flush=True)
        status = _fit_and_save(
            args,
            model,  # type: ignore[arg-type]  # typed Sequential; it uses Model's fit, evaluate and save only
            data,
            f"Fine-tuning {source.name} ({_what(args)}: {trainable:,} of {total:,} parameters train) on "
            f"{len(data.train)} examples",
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation_split=0.0,
            sources={"train": f"--data {args.data!r}", "validation": _validation_source(args)},
            record=_record(args, model, source),
            history=None,
        )
        path = model.export(output / EXPORT_FILE, writing_mode=writing_mode(args), merge_adapters=bool(args.lora))
    merged = ", adapters merged" if args.lora else ""
    print(f"  {'export':<8} {output / EXPORT_FILE} ({path.stat().st_size:,} bytes{merged})")
    return status


def _record(args: argparse.Namespace, model: Model, source: Path) -> dict[str, Any]:
    """The run.json finetune writes beside model/: where the model came from instead of its layers (training a model
    from scratch from it is refused), and the data (absolute paths), batch size and seed that `onnxtrain train
    --resume DIR --epochs N` continues the run with."""
    loader = DatasetLoader(Path.cwd())
    data = {"train": loader.absolute(args.data)}
    if args.test:
        data["test"] = loader.absolute(args.test)
    if args.validation:
        data["validation"] = "test" if args.validation == "test" else loader.absolute(args.validation)
    return {
        "name": model.name,
        FINETUNED_FROM: str(source.resolve()),
        "data": data,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": model.seed,
        "engine": engines.resolve(engines.AUTO),
        "workers": _workers_note(None),
    }


def _check_numbers(args: argparse.Namespace) -> None:
    """--seed and --lora-alpha, refused before anything is written (argparse's int and float take -1 and nan)."""
    if args.seed < 0:
        raise InvalidArgumentError(f"--seed expects a non-negative integer. Received: --seed {args.seed}")
    if args.lora_alpha is None:
        return
    if args.lora is None:
        raise InvalidArgumentError(
            f"--lora-alpha scales the adapters that --lora RANK adds. Received: --lora-alpha {args.lora_alpha:g} "
            "without --lora"
        )
    if not (math.isfinite(args.lora_alpha) and args.lora_alpha > 0):
        raise InvalidArgumentError(
            f"--lora-alpha expects a positive number. Received: --lora-alpha {args.lora_alpha:g}"
        )


def _refuse_training_nothing(args: argparse.Namespace, model: Model, source: Path) -> None:
    """Refuse options that leave no parameter to train: a fine-tuning run that trains nothing is their mistake
    (Python's fit only warns, as Keras trains such a model without a word)."""
    if model.graph.trainable_params_by_name():
        return
    chosen = [f"--{flag} {' '.join(getattr(args, flag))}" for flag in ("trainable", "frozen") if getattr(args, flag)]
    raise InvalidArgumentError(
        f"finetune would train no parameter: the options leave none of {source.name}'s weights trainable (the "
        "statistics of a BatchNormalization never train; they follow the batches). Received: "
        f"{' '.join(chosen) or 'no --trainable or --frozen'}"
    )


def _refuse_other_shapes(args: argparse.Namespace, model: Model, data: RunData) -> None:
    """Refuse data whose examples have another shape than the model's input, saying what .npz to write: fit's
    advice (`x.reshape(...)`, `np.moveaxis(...)`) is for Python, and an imported graph's input cannot be declared
    otherwise (a torch CNN reads [1, 28, 28], channels first; fashion-mnist is [28, 28, 1])."""
    expected = model.input_shape
    if not isinstance(expected, tuple):  # several inputs: fit names the one that does not fit
        return
    sources = [(data.train, "--data", args.data), (data.test, "--test", args.test)]
    if data.validation is not None and data.validation is not data.test:
        sources.append((data.validation, "--validation", args.validation))
    for dataset, option, spec in sources:
        given = tuple(int(d) for d in dataset.x.shape[1:]) if dataset is not None else tuple(expected)
        advice = _npz_advice(option, spec, given, tuple(expected))
        if advice is not None:  # other shapes: fit's error says what it expects
            raise InvalidArgumentError(
                f"{option} {spec!r} does not fit the model: {Path(args.model).name} takes examples of shape "
                f"{list(expected)}, and these are {list(given)}. {advice}"
            )


def _npz_advice(option: str, spec: str, given: tuple[int, ...], expected: tuple[int, ...]) -> str | None:
    """How to write examples of shape `given` as a .npz (x, y) of the model's input shape `expected` (one Python
    line, then the option), where the channel axis moves or a reshape makes them; None for other shapes."""
    if given == expected:
        return None
    if len(expected) >= 3 and given == (*expected[1:], expected[0]):
        what, change, suffix = (
            "with the channel axis moved first, as the model reads it",
            "np.moveaxis(x, -1, 1)",
            "nchw",
        )
    elif len(expected) >= 3 and given == (expected[-1], *expected[:-1]):
        what, change, suffix = (
            "with the channel axis moved last, as the model reads it",
            "np.moveaxis(x, 1, -1)",
            "nhwc",
        )
    elif math.prod(given) == math.prod(expected):
        what, change, suffix = "reshaped", f"x.reshape(-1, {', '.join(map(str, expected))})", "reshaped"
    else:
        return None
    source, _, split = spec.partition(":")
    if source != "fashion-mnist" and not spec.endswith(".npz"):  # a folder of images
        return f"Write the examples {what} to a .npz with x and y, and pass that as {option}."
    if source == "fashion-mnist":
        split = split or ("train" if option == "--data" else "test")
        read = f"from onnxtrain.datasets import fashion_mnist; d = fashion_mnist()[{0 if split == 'train' else 1}]; "
        read += "x, y = d.x, d.y"
        target = f"fashion_mnist_{split}_{suffix}.npz"
    else:
        read = f"d = np.load('{spec}'); x, y = d['x'], d['y']"
        target = f"{Path(spec).stem}_{suffix}.npz"
    scrambled = " (a reshape would scramble the images)" if suffix != "reshaped" else ""
    return (
        f"Write the examples {what}{scrambled} to a .npz and pass that: "
        f"python -c \"import numpy as np; {read}; np.savez('{target}', x={change}, y=y)\", then {option} {target}"
    )


def _validation_source(args: argparse.Namespace) -> str:
    """How errors name the validation data: the --test data for `--validation test`."""
    return f"--test {args.test!r}" if args.validation == "test" else f"--validation {args.validation!r}"


def _datasets(args: argparse.Namespace, model: Model) -> RunData:
    """--data, --test and --validation; a folder of images read at `model`'s input size, for --loss."""
    images = model_target(model, args.loss, model.seed)
    loader = DatasetLoader(Path.cwd(), images)
    train = loader.load(args.data, "--data", "train")
    loader.images = images.with_classes_of(train, f"--data {args.data!r}")
    # Integer pixels of the test and validation data as stored: the model reads them with its input_scale, which it
    # takes from the training data (see load_run_data).
    test = loader.load(args.test, "--test", "test", scale_pixels=False) if args.test else None
    if args.validation == "test":
        if test is None:
            raise InvalidArgumentError("--validation test needs --test DATA")
        return RunData(train, test, test)
    validation = loader.load(args.validation, "--validation", "test", scale_pixels=False) if args.validation else None
    return RunData(train, test, validation)


def _build(args: argparse.Namespace) -> Model:
    """from_onnx (with lora) for the model alone; a Functional model of its OnnxLayer and a Dense head with --head."""
    from onnxtrain.adapters import ADAPTER_PATTERNS, add_adapters
    from onnxtrain.foreign._graph import cut, read_model
    from onnxtrain.foreign._import import companion_outputs, imported_model, input_dtype
    from onnxtrain.foreign._layer import OnnxLayer
    from onnxtrain.foreign._lora import lora
    from onnxtrain.layers import Dense, Flatten, Input
    from onnxtrain.model import Model

    caller = "finetune"  # errors about the options name them: --trainable, --outputs
    proto = read_model(args.model, caller)
    if args.outputs:  # cut before adapting: no adapters on nodes the cut drops
        proto = cut(proto, [args.outputs], caller)
    elif companion_outputs(proto):  # an onnxtrain export: its logits, not the probabilities the loss adds again
        proto = cut(proto, [o.name for o in proto.graph.output if o.name not in companion_outputs(proto)], caller)
    if not args.outputs and len(proto.graph.output) > 1:
        names = [o.name for o in proto.graph.output]
        raise InvalidArgumentError(
            f"'{args.model}' has {len(names)} outputs {names}; finetune trains one: choose it with --outputs NAME"
            + (" (for an onnxtrain export: --outputs logits)" if "logits" in names else "")
        )
    trainable: Any = args.trainable or None
    if args.head is None:
        frozen = args.frozen or None
        model = imported_model(proto, trainable=trainable, frozen=frozen, name=_name(args.model), caller=caller)
        if args.lora is None:
            return model
        with _naming_lora(args, proto):
            return lora(model, rank=args.lora, alpha=_lora_alpha(args))
    if args.lora is not None:  # the base trains its adapters only
        with _naming_lora(args, proto):
            adapted = add_adapters(proto, rank=args.lora, alpha=_lora_alpha(args))
        base = OnnxLayer(adapted, trainable=ADAPTER_PATTERNS, caller=caller)
    else:  # a frozen feature extractor unless --trainable/--frozen say what trains
        chosen = trainable if trainable is not None else (True if args.frozen else False)
        base = OnnxLayer(proto, trainable=chosen, frozen=args.frozen or None, caller=caller)
    if base.multi_input:
        raise InvalidArgumentError(f"--head needs a model with one input. Received: '{args.model}' takes several")
    x = Input(*base.data_shapes[0], dtype=input_dtype(base.data_inputs[0]))  # int64 token ids stay int64
    features = base(x)
    if len(base.compute_output_shape(base.data_shapes[0])) > 1:
        features = Flatten()(features)
    return Model(x, Dense(args.head, name="head")(features), name=_name(args.model), seed=args.seed)


@contextlib.contextmanager
def _naming_lora(args: argparse.Namespace, proto: Any) -> Iterator[None]:
    """add_adapters' refusal in --lora's words. The command passes a positive rank and alpha (checked before),
    every MatMul/Gemm as targets and no node names, so the one refusal left is a graph with nothing to adapt."""
    try:
        yield
    except InvalidArgumentError as e:
        ops = sorted({node.op_type for node in proto.graph.node} - {"Constant"})
        raise InvalidArgumentError(
            f"--lora {args.lora}: the model has no MatMul or Gemm whose weight is a 2-D float initializer to adapt "
            f"(its ops: {', '.join(ops)}). Fine-tune it without --lora (--trainable / --frozen choose what trains)"
        ) from e


def _lora_alpha(args: argparse.Namespace) -> float:
    return LORA_ALPHA if args.lora_alpha is None else float(args.lora_alpha)


def _what(args: argparse.Namespace) -> str:
    """What trains, for the run's headline."""
    base = f"LoRA rank {args.lora} adapters" if args.lora else "its weights"
    if args.head is None:
        return base
    if args.lora is None and not (args.trainable or args.frozen):
        return f"a new Dense({args.head}) head on the frozen model"
    return f"{base} and a new Dense({args.head}) head"


def _name(path: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in Path(path).stem) or "imported"


def add_finetune_command(commands: argparse._SubParsersAction) -> None:
    """Register `finetune` on the parser's sub-commands."""
    finetune = commands.add_parser(
        "finetune",
        help="fine-tune an ONNX model made elsewhere (freeze, cut, new head, LoRA)",
        description="Import MODEL.onnx (onnxtrain.from_onnx), train it on --data and write model/ (with its "
        "optimizer state), run.json (the data, batch size and seed: onnxtrain train --resume DIR --epochs N "
        f"continues the run exactly), history.csv, curves.png and the export {EXPORT_FILE} into --output. Every "
        "float initializer but BatchNormalization's running statistics and an exporter's constants (one element, "
        "or non-finite values) trains unless --trainable/--frozen say otherwise; with --head N the model is a "
        "frozen feature extractor under a new Dense(N) head unless they do; --lora R trains rank-R adapters only "
        "and merges them into the exported weights.",
    )
    finetune.add_argument("model", metavar="MODEL.onnx", help="the ONNX model (external data read from its folder)")
    finetune.add_argument(
        "--data",
        required=True,
        help="training data: 'fashion-mnist[:train]', a .npz with x, y, or a folder of class sub-folders of images",
    )
    finetune.add_argument(
        "--test", help="evaluated before and after training: 'fashion-mnist:test', a .npz or a folder of images"
    )
    finetune.add_argument(
        "--validation",
        metavar="test|DATA",
        help="evaluated after each epoch: 'test' (the --test data), a .npz or a folder of images",
    )
    finetune.add_argument(
        "--trainable", nargs="+", metavar="PATTERN", help="initializer names or glob patterns: only these train"
    )
    finetune.add_argument(
        "--frozen", nargs="+", metavar="PATTERN", help="initializer names or glob patterns that do not train"
    )
    finetune.add_argument("--outputs", metavar="NAME", help="cut the graph at this value (a feature extractor)")
    finetune.add_argument("--head", type=positive_int, metavar="N", help="a new Dense(N) head on the model's output")
    finetune.add_argument("--lora", type=positive_int, metavar="RANK", help="train LoRA adapters of this rank only")
    finetune.add_argument(
        "--lora-alpha", type=float, metavar="ALPHA", help=f"LoRA scale numerator (default: {LORA_ALPHA:g})"
    )
    finetune.add_argument("--epochs", type=positive_int, default=1, help="(default: 1)")
    finetune.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    finetune.add_argument("--optimizer", default="adam", help="adam, sgd, rmsprop, ... (default: adam)")
    finetune.add_argument("--learning-rate", type=float, default=0.001, help="(default: 0.001)")
    finetune.add_argument("--loss", default=DEFAULT_LOSS, help=f"(default: {DEFAULT_LOSS})")
    finetune.add_argument("--seed", type=int, default=0, help="seeds the shuffling and the head (default: 0)")
    finetune.add_argument("--output", metavar="DIR", required=True, help="output folder")
    finetune.add_argument("--overwrite", action="store_true", help="replace DIR/model and DIR/model.onnx")
    finetune.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bar (plain lines when not a terminal), 2 one line per epoch",
    )
    finetune.set_defaults(func=cmd_finetune)
