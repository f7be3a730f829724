"""The batches a fit steps through (`_batches`): shuffled rows gathered into a reused buffer are numpy's fancy
indexing of them, for one input and several, and each epoch's order is a permutation fixed by (seed, epoch)."""

from __future__ import annotations

import numpy as np

from onnxtrain._batches import batch_arrays, empty_rows, epoch_order, gather
from onnxtrain.arrays import InputArrays


def test_gathered_rows_are_fancy_indexing_and_reuse_the_buffer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3, 2)).astype(np.float32)
    buffer = empty_rows(x, 4)
    assert (buffer.shape, buffer.dtype) == ((4, 3, 2), np.float32)
    for index in (np.array([7, 0, 3, 9]), np.array([5, 1])):  # a full batch, then a shorter last one
        rows = gather(x, index, buffer)
        np.testing.assert_array_equal(rows, x[index])
        assert rows.base is buffer or rows is buffer


def test_several_inputs_are_gathered_together():
    rng = np.random.default_rng(1)
    x = InputArrays([rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 4, 1)).astype(np.float32)])
    index = np.array([4, 2, 5])
    rows = gather(x, index, empty_rows(x, 3))
    assert [a.shape for a in batch_arrays(rows)] == [(3, 2), (3, 4, 1)]
    for gathered, array in zip(batch_arrays(rows), x.arrays, strict=True):
        np.testing.assert_array_equal(gathered, array[index])


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    order = epoch_order(7, 1, 50)
    np.testing.assert_array_equal(np.sort(order), np.arange(50))
    np.testing.assert_array_equal(order, epoch_order(7, 1, 50))
    assert not np.array_equal(order, epoch_order(7, 2, 50))
    assert not np.array_equal(order, epoch_order(8, 1, 50))
