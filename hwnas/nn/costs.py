"""The analytic cost model's shared vocabulary: the operator kinds every
task's cost model fills, and the columns it ends in (so that one predictor
code path learns any task)."""

from __future__ import annotations

KINDS = ("frontend", "subsampling", "attention_proj", "attention_scores", "ffn", "conv",
         "lstm", "se", "decoder", "joint")

ANALYTIC = ([f"flops_{k}" for k in KINDS] + [f"params_{k}" for k in KINDS] +
            ["flops", "params", "in_frames", "enc_frames", "key_len", "cache_elems",
             "input_elems", "output_elems", "act_elems", "score_elems", "ops",
             "weight_mb", "flops_per_param", "flops_per_op", "lstm_steps"])
