"""The fitted model as plain arrays (compile step and runtime) and the numba tree kernels that replay it."""
