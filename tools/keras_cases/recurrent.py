"""Keras twins of the recurrent rows in tests/test_layers_recurrent.py."""

import keras

L = keras.layers

CASES = {
    "lstm": (lambda: L.LSTM(3), (5, 2)),
    "lstm_sequences": (lambda: L.LSTM(4, return_sequences=True), (4, 3)),
    "lstm_backwards": (lambda: L.LSTM(3, go_backwards=True), (5, 2)),
    "lstm_backwards_sequences": (lambda: L.LSTM(3, go_backwards=True, return_sequences=True), (5, 2)),
    "lstm_no_bias": (lambda: L.LSTM(3, use_bias=False), (4, 2)),
    "gru": (lambda: L.GRU(3), (5, 2)),
    "gru_sequences": (lambda: L.GRU(4, return_sequences=True), (4, 3)),
    "gru_backwards_sequences": (lambda: L.GRU(3, go_backwards=True, return_sequences=True), (5, 2)),
    "gru_reset_before": (lambda: L.GRU(3, reset_after=False), (5, 2)),
    "gru_reset_before_sequences": (lambda: L.GRU(3, reset_after=False, return_sequences=True), (4, 2)),
    "gru_no_bias": (lambda: L.GRU(3, use_bias=False), (4, 2)),
    "simple_rnn": (lambda: L.SimpleRNN(3), (5, 2)),
    "simple_rnn_sequences": (lambda: L.SimpleRNN(4, return_sequences=True), (4, 3)),
    "simple_rnn_relu": (lambda: L.SimpleRNN(3, activation="relu"), (5, 2)),
    "simple_rnn_backwards_sequences": (lambda: L.SimpleRNN(3, go_backwards=True, return_sequences=True), (4, 2)),
    "simple_rnn_no_bias": (lambda: L.SimpleRNN(3, use_bias=False), (4, 2)),
}
