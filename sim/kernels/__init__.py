"""Reference kernels (numba and numpy) and the functional tile-by-tile executor."""
from .reference import (acc_dtype, conv2d, conv2d_layer, conv2d_numpy, fc, gemm, gemm_numpy,
                        im2col_conv2d_numpy)

__all__ = ["acc_dtype", "conv2d", "conv2d_layer", "conv2d_numpy", "fc", "gemm", "gemm_numpy",
           "im2col_conv2d_numpy"]
