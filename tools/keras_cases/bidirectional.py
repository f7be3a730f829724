"""Keras twins of the Bidirectional rows in tests/test_layers_bidirectional.py."""

import keras

L = keras.layers

CASES = {
    "bidirectional_lstm": (lambda: L.Bidirectional(L.LSTM(3)), (5, 2)),
    "bidirectional_lstm_sequences_sum": (
        lambda: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum"),
        (4, 3),
    ),
    "bidirectional_lstm_no_bias_mul": (lambda: L.Bidirectional(L.LSTM(3, use_bias=False), merge_mode="mul"), (4, 2)),
    "bidirectional_gru_ave": (lambda: L.Bidirectional(L.GRU(3), merge_mode="ave"), (5, 2)),
    "bidirectional_gru_sequences": (lambda: L.Bidirectional(L.GRU(3, return_sequences=True)), (5, 2)),
    "bidirectional_gru_reset_before_mul": (
        lambda: L.Bidirectional(L.GRU(3, reset_after=False), merge_mode="mul"),
        (5, 2),
    ),
    "bidirectional_gru_reset_before_sequences_ave": (
        lambda: L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), merge_mode="ave"),
        (4, 2),
    ),
    "bidirectional_simple_rnn_sequences_mul": (
        lambda: L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="mul"),
        (4, 3),
    ),
    "bidirectional_simple_rnn_relu_sum": (
        lambda: L.Bidirectional(L.SimpleRNN(3, activation="relu"), merge_mode="sum"),
        (5, 2),
    ),
    "bidirectional_lstm_gru_sequences": (
        lambda: L.Bidirectional(
            L.LSTM(3, return_sequences=True), backward_layer=L.GRU(4, go_backwards=True, return_sequences=True)
        ),
        (5, 2),
    ),
    "bidirectional_simple_rnn_relu_backward_ave": (
        lambda: L.Bidirectional(
            L.SimpleRNN(3, return_sequences=True),
            backward_layer=L.SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True),
            merge_mode="ave",
        ),
        (4, 2),
    ),
    "bidirectional_swapped_sequences": (
        lambda: L.Bidirectional(
            L.LSTM(3, go_backwards=True, return_sequences=True), backward_layer=L.LSTM(3, return_sequences=True)
        ),
        (5, 2),
    ),
    "bidirectional_swapped_sum": (
        lambda: L.Bidirectional(L.GRU(3, go_backwards=True), backward_layer=L.GRU(3), merge_mode="sum"),
        (5, 2),
    ),
}
