"""Benchmarks that print their figures and keep their results in
``bench/results/`` (named by experiment; earlier results are in git's
history). Run each from the repository root as a module, e.g.
``python -m bench.host_calibration --n 40``; ``bench.harness`` is what they
share."""
