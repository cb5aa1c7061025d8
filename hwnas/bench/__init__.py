"""Benchmarking model files made anywhere (``hwnas bench``): model reading
(model), inputs from flags (inputs), state pairs (state), the run (run),
A vs B (compare) and per-operator tables (ops)."""
