"""`onnxtrain.summary`: Keras' `summary(expand_nested=True)`, whose rows for a nested model's layers Keras 3.15
labels (/work/venv-jax, keras 3.15.1, KERAS_BACKEND=jax) as below: "└ " indented three spaces per depth; a cell
wrapped at word boundaries as Keras wraps it; Keras' `line_length` and `positions` (`column_widths`), as a
model's summary takes them, and what it refuses (Keras' `layer_range`, a positional line_length); the logits
mark on an output's layer emitted linear; the totals."""

from __future__ import annotations

import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import BatchNormalization, Dense, Flatten, Input, RepeatVector, Reshape, Softmax
from onnxtrain.summary import CONNECTED_WIDTHS, LOGITS_MARK, WIDTHS, column_widths, summary_table

# Keras: outer.summary(expand_nested=True) of the models of `three_deep`, its "Layer (type)" column
KERAS_EXPANDED = [
    "b (InputLayer)",
    "deeper (Functional)",
    "   └ z (InputLayer)",
    "   └ d1 (Dense)",
    "   └ sub (Functional)",
    "      └ a (InputLayer)",
    "      └ inner (Dense)",
    "   └ d2 (Dense)",
    "head (Dense)",
]


def three_deep() -> Model:
    a = Input(4, name="a")
    sub = Model(a, Dense(3, name="inner")(a), name="sub", seed=0)
    z = Input(3, name="z")
    deeper = Model(z, Dense(2, name="d2")(sub(Dense(4, name="d1")(z))), name="deeper", seed=0)
    b = Input(3, name="b")
    return Model(b, Dense(1, name="head")(deeper(b)), name="outer", seed=0)


def first_column(table: str) -> list[str]:
    """The "Layer (type)" cells of a summary's rows, as Keras writes them (`name (Type)`, Input as InputLayer)."""
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    cells = [line[:39].rstrip() for line in lines[rules[1] + 1 : rules[2]] if not line.startswith("_")]
    return [cell.replace("(Input)", "(InputLayer)").replace("(", " (") for cell in cells if cell]


def test_expand_nested_lists_each_nested_models_layers_under_it_as_keras_does():
    table = three_deep().summary(print_fn=None, expand_nested=True)
    assert first_column(table) == KERAS_EXPANDED
    assert "   └ d1(Dense)                         [None, 4]                 16\n" in table + "\n"  # no connection


def test_without_expand_nested_a_nested_model_is_one_row():
    table = three_deep().summary(print_fn=None)
    assert first_column(table) == [label for label in KERAS_EXPANDED if "└" not in label]


def test_expand_nested_keeps_the_trainable_column_and_a_sequential_takes_it():
    table = three_deep().summary(print_fn=None, expand_nested=True, show_trainable=True)
    assert "      └ inner(Dense)" in table and table.count(" Y\n") >= 4
    stack = Sequential([Input(4), Dense(2)], seed=0)
    assert stack.summary(print_fn=None, expand_nested=True) == stack.summary(print_fn=None)


def test_expand_nested_takes_a_bool_only():
    with pytest.raises(InvalidArgumentError, match=r"summary\(expand_nested=...\) expects a bool"):
        three_deep().summary(print_fn=None, expand_nested="yes")


# --- wrapping ---------------------------------------------------------------------------------------------------
def with_batch_norm() -> Sequential:
    return Sequential(
        [
            Input(4),
            Dense(10, name="dense_with_a_very_long_name_1"),
            BatchNormalization(name="batch_normalization_1"),
            Dense(3, name="dense"),
        ],
        seed=0,
    )


# Keras: the model of `with_batch_norm` (its first layer unnamed), summary()'s "Layer (type)" cells, line by line
KERAS_WRAPPED = ["dense_with_a_very_long_name_1", "(Dense)", "batch_normalization_1", "(BatchNormalization)"]


def test_a_label_wider_than_its_column_wraps_at_a_word_boundary_as_keras_wraps_it():
    lines = with_batch_norm().summary(print_fn=None).splitlines()
    first = lines.index(next(line for line in lines if line.startswith("batch_normalization_1")))
    assert [lines[first][:39].rstrip(), lines[first + 1]] == KERAS_WRAPPED[2:]
    assert lines[first][39:].split() == ["[None,", "10]", "40"]  # the other columns stay in place


def test_a_word_longer_than_its_column_is_cut_where_it_must_be():
    widths = column_widths(WIDTHS, line_length=60)
    table = summary_table("Sequential (s)", with_batch_norm().layers, (0, 0), line_length=60)
    room = widths[0] - 1
    assert "dense_with_a_very_long_name_1(Dense)"[:room] in table
    assert all(len(line[: widths[0]].rstrip()) <= room for line in table.splitlines() if not set(line) <= set("=_"))


# --- line_length and positions ----------------------------------------------------------------------------------
WIDTH_CASES = [
    ("KotlinDL's", WIDTHS, False, None, None, (39, 26, 13)),
    ("with Trainable", WIDTHS, True, None, None, (39, 26, 13, 11)),
    ("line_length scales them", WIDTHS, False, 156, None, (78, 52, 26)),
    ("line_length, connected", CONNECTED_WIDTHS, False, 54, None, (19, 13, 7, 15)),
    ("positions as fractions", WIDTHS, False, 100, [0.45, 0.8, 1.0], (45, 35, 20)),
    ("positions in characters (Keras 2)", WIDTHS, False, 100, [40, 70, 100], (40, 30, 30)),
    ("positions without line_length", WIDTHS, False, None, [0.5, 0.75, 1.0], (39, 19, 20)),
    ("positions with Trainable: Keras' 0.9", WIDTHS, True, 100, [0.5, 0.8, 1.0], (45, 27, 18, 10)),
]


@pytest.mark.parametrize(
    ("widths", "trainable", "line_length", "positions", "expected"),
    [row[1:] for row in WIDTH_CASES],
    ids=[row[0] for row in WIDTH_CASES],
)
def test_column_widths_follow_line_length_and_positions_as_keras(widths, trainable, line_length, positions, expected):
    assert column_widths(widths, trainable, line_length, positions) == expected


def test_line_length_sets_the_width_of_every_line():
    model = with_batch_norm()
    table = summary_table("Sequential (s)", model.layers, model.param_counts(), graph=model.graph, line_length=60)
    lines = table.splitlines()
    assert lines[0] == "=" * 60 and max(map(len, lines)) == 60
    first = next(i for i, line in enumerate(lines) if line.startswith("batch_normalization_1 "))
    assert lines[first + 1] == "(BatchNormalization)"


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_a_models_summary_takes_keras_line_length_and_positions(kind):
    model = with_batch_norm() if kind == "sequential" else three_deep()
    positions = [0.45, 0.8, 1.0] if kind == "sequential" else [0.3, 0.6, 0.7, 1.0]  # one per column
    for text in (
        model.summary(print_fn=None, line_length=70),
        model.print_summary(print_fn=None, line_length=70, positions=positions),
        model.summary(None, False, False, 70, positions),  # Keras' order after onnxtrain's first three
    ):
        lines = text.splitlines()
        assert lines[0] == "=" * 70 and max(map(len, lines)) == 70
    header = next(line for line in lines if line.startswith("Layer (type)"))
    assert header.index("Output Shape") == int(positions[0] * 70)  # where Keras' positions put the second column


SUMMARY_REFUSALS = [
    (
        "Keras' layer_range",
        lambda model: model.summary(layer_range=["a", "head"]),
        InvalidTypeError,
        r"^summary\(\) got unexpected keyword argument 'layer_range'\. 'layer_range' \(Keras'\) has no counterpart "
        r"here: summary shows every layer; .* It takes: print_fn, show_trainable, expand_nested, line_length, "
        r"positions\. Received: layer_range=",
    ),
    (
        "KotlinDL's camelCase",
        lambda model: model.summary(lineLength=80),
        InvalidTypeError,
        r"'lineLength' \(in Python: line_length\)",
    ),
    (
        "Keras' positional line_length",
        lambda model: model.summary(80),
        InvalidTypeError,
        r"^summary\(print_fn=\.\.\.\) expects a callable .* pass it by keyword, summary\(line_length=80\)\. "
        r"Received: 80$",
    ),
    (
        "positions of the wrong count",
        lambda model: model.summary(print_fn=None, positions=[0.5, 1.0]),
        InvalidArgumentError,
        r"summary\(positions=\.\.\.\) expects 4 increasing positions",
    ),
    ("line_length too short", lambda model: model.print_summary(line_length=20), InvalidArgumentError, r"under 4"),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [r[1:] for r in SUMMARY_REFUSALS], ids=[r[0] for r in SUMMARY_REFUSALS]
)
def test_a_models_summary_refuses_what_it_does_not_take(call, error, match, capsys):
    with pytest.raises(error, match=match):
        call(three_deep())
    assert capsys.readouterr().out == ""  # nothing printed before the refusal


BAD_WIDTHS = [
    (
        "line_length str",
        {"line_length": "80"},
        InvalidTypeError,
        r"line_length=...\) expects an int\. Received: line_length='80'",
    ),
    ("line_length bool", {"line_length": True}, InvalidTypeError, r"expects an int"),
    ("line_length 0", {"line_length": 0}, InvalidArgumentError, r"expects a positive int\. Received: 0"),
    ("too narrow", {"line_length": 12}, InvalidArgumentError, r"leaves a column under 4 characters wide"),
    ("positions of 2", {"positions": [0.5, 1.0]}, InvalidArgumentError, r"expects 3 increasing positions"),
    ("positions decreasing", {"positions": [0.8, 0.5, 1.0]}, InvalidArgumentError, r"Received: positions=\[0\.8"),
    ("positions str", {"positions": "0.5"}, InvalidTypeError, r"\(a list of numbers\)"),
    ("positions zero", {"positions": [0, 0.5, 1.0]}, InvalidArgumentError, r"each above 0"),
]


@pytest.mark.parametrize(("given", "error", "match"), [r[1:] for r in BAD_WIDTHS], ids=[r[0] for r in BAD_WIDTHS])
def test_column_widths_refuse_what_keras_cannot_lay_out(given, error, match):
    with pytest.raises(error, match=match):
        column_widths(WIDTHS, **given)


# --- the logits mark ------------------------------------------------------------------------------------------
def reshaped_head(kind: str) -> Model:
    if kind == "sequential":
        return Sequential([Input(4), Dense(10, name="head"), Reshape((10,))], seed=0)
    x = Input(4)
    return Model(x, Flatten()(Reshape((2, 5))(Dense(10, name="head")(x))), seed=0)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_a_head_whose_values_a_reshape_carries_to_the_output_is_marked_linear(kind):
    model = reshaped_head(kind)
    assert LOGITS_MARK not in model.summary(print_fn=None)  # no loss yet: its ReLU stays
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    head = next(line for line in model.summary(print_fn=None).splitlines() if line.startswith("head("))
    assert head.startswith(f"head(Dense) {LOGITS_MARK}")
    assert sum(LOGITS_MARK in line for line in model.summary(print_fn=None).splitlines()) == 1
    model.close()


def test_a_head_given_its_activation_is_not_marked():
    x = Input(4)
    model = Model(x, Reshape((10,))(Dense(10, activation="relu", name="head")(x)), seed=0)
    model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
    assert LOGITS_MARK not in model.summary(print_fn=None)
    model.close()


def nested_softmax_head(kind: str) -> Model | Sequential:
    """A nested model ending in `Dense(3)` then `Softmax()` as the output's layer (or its probabilities repeated):
    the graphs emit its Dense linear and leave its softmax to the loss (`emit.logits_chain`)."""
    inner = Input(4, name="inner_input")
    head = Model(inner, Softmax(name="probabilities")(Dense(3, name="scores")(inner)), name="head", seed=0)
    if kind == "sequential":
        return Sequential([Input(4), Dense(4, activation="tanh", name="features"), head], seed=0)
    x = Input(4)
    features = head(Dense(4, activation="tanh", name="features")(x))
    return Model(x, RepeatVector(2, name="repeated")(features) if kind == "repeated" else features, seed=0)


def marked_rows(table: str) -> list[str]:
    """The "Layer (type)" cells marked with the logits mark, beside the label or on a line of its own under it."""
    lines = table.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if LOGITS_MARK in line:
            label = line[:39].replace(LOGITS_MARK, "").strip() or lines[i - 1][:39].strip()
            rows.append(label.lstrip("└ "))
    return rows


@pytest.mark.parametrize("kind", ["functional", "sequential", "repeated"])
def test_a_nested_models_dense_before_its_softmax_layer_is_marked_not_the_model(kind):
    with nested_softmax_head(kind) as model:
        loss = "sparse_categorical_crossentropy" if kind != "repeated" else "categorical_crossentropy"
        model.compile(loss=loss)
        expanded = model.summary(print_fn=None, expand_nested=True)
        assert marked_rows(expanded) == ["scores(Dense)"]
        scores = next(line for line in expanded.splitlines() if "scores(Dense)" in line)
        assert scores.startswith(f"   └ scores(Dense) {LOGITS_MARK}")
        # its values stay the softmax's probabilities (model(x)): the nested model's own row is not marked
        assert LOGITS_MARK not in model.summary(print_fn=None)


# --- totals -----------------------------------------------------------------------------------------------------
def test_the_totals_are_kotlindls_labels_of_keras_counts():
    # Keras, the same layers: Trainable params: 103, Non-trainable params: 20 (the moving mean and variance)
    tail = with_batch_norm().summary(print_fn=None).splitlines()[-4:-1]
    assert tail == ["Total trainable params: 103", "Total frozen params: 20", "Total params: 123"]
