"""Multi-objective architecture search (Optuna) over CER, latency and size."""
