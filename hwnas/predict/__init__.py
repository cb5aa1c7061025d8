"""Latency (and accuracy) predictors: features from the one architecture
definition, XGBoost models trained on measured profiles, accuracy metrics and
few-shot adaptation to a new device."""
