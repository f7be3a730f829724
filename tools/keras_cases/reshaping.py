"""Keras twins of the reshaping layer rows in tests/test_layers_reshaping.py."""

import keras

CASES = {
    "reshape_infer": (lambda: keras.layers.Reshape((4, -1)), (2, 6)),
    "reshape_3d": (lambda: keras.layers.Reshape((3, 2, 2)), (12,)),
    "permute_2d": (lambda: keras.layers.Permute((2, 1)), (3, 5)),
    "permute_3d": (lambda: keras.layers.Permute((3, 1, 2)), (2, 3, 4)),
    "repeat_vector": (lambda: keras.layers.RepeatVector(3), (4,)),
    "zero_padding2d_int": (lambda: keras.layers.ZeroPadding2D(1), (3, 4, 2)),
    "zero_padding2d_asym": (lambda: keras.layers.ZeroPadding2D(((1, 2), (0, 3))), (3, 4, 2)),
    "cropping2d_sym": (lambda: keras.layers.Cropping2D((1, 1)), (4, 5, 2)),
    "cropping2d_asym": (lambda: keras.layers.Cropping2D(((1, 0), (1, 2))), (4, 5, 2)),
    "upsampling2d_nearest": (lambda: keras.layers.UpSampling2D((2, 3)), (3, 2, 2)),
    "upsampling2d_bilinear": (lambda: keras.layers.UpSampling2D(2, interpolation="bilinear"), (3, 4, 2)),
    "upsampling2d_bilinear_3x2": (lambda: keras.layers.UpSampling2D((3, 2), interpolation="bilinear"), (3, 4, 2)),
    "upsampling2d_bicubic": (lambda: keras.layers.UpSampling2D((2, 3), interpolation="bicubic"), (4, 3, 2)),
}
