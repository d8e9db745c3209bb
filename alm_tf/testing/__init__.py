"""Fixtures the tests and the benchmarks share: a tiny ALM model, person
detector files of each layout, images, and the PyTorch re-implementation of
the official network (the parity oracle; needs the torch extra). The
library itself never imports this package."""
