"""Short-budget training, decoding and WER/CER for architectures of the space."""
