"""The end-to-end job that exists today (``make demo``): take hand-designed
baselines and sampled architectures from the search space, report their size
and FLOPs, export each to every device format and check every export against
PyTorch. Latency measurement, training and search build on this.

    python -m hwnas.asr.demo [--out runs/demo] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hwnas.asr import ArchConfig, default_space, preset
from hwnas.asr.models.stats import model_stats
from hwnas.export import FORMATS, ExportError, export


def pick(seed: int) -> list[tuple[str, ArchConfig]]:
    """Two baselines plus two sampled architectures (one streaming, one not)."""
    chosen = [("preset conformer_xs", preset("conformer_xs")),
              ("preset lstm_rnnt", preset("lstm_rnnt"))]
    # a streaming attention model and a full-context model of another family
    families = {True: ("conformer", "transformer"), False: ("transformer", "contextnet",
                                                             "cnn_lstm", "blstm")}
    want: dict[bool, ArchConfig | None] = {True: None, False: None}
    for a in default_space().sample_distinct(200, seed):
        if want[a.streaming] is None and a.encoder in families[a.streaming]:
            want[a.streaming] = a
    chosen += [(f"sampled ({'streaming' if s else 'full context'})", a)
               for s, a in want.items() if a is not None]
    return chosen


def main() -> int:
    p = argparse.ArgumentParser(description="Export and verify baselines and sampled "
                                            "architectures in every device format.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    con = Console() if sys.stdout.isatty() else Console(width=160)
    space = default_space()
    con.print(f"[bold]search space[/]: {space.count():,} valid architectures over "
              f"{len(space.decisions)} decisions")
    archs = pick(args.seed)
    t = Table(title="architectures")
    for col in ("what", "id", "encoder", "decoder", "mode", "params", "MFLOPs/call"):
        t.add_column(col)
    for what, a in archs:
        st = model_stats(a)
        mode = f"stream {a.chunk_ms} ms" if a.streaming else "utterance 4.8 s"
        t.add_row(what, a.id, f"{a.encoder} {a.num_layers}x{a.d_model}"
                  + (f" {a.attention}" if a.attention else ""), a.decoder, mode,
                  f"{st.params:,}", f"{st.flops / 1e6:,.1f}")
    con.print(t)
    r = Table(title=f"exports under {args.out} (checked on held-out inputs)",
              caption="random weights: fp32 formats must match PyTorch within 1e-4; token "
                      "agreement of quantised formats is informative only (a random "
                      "network's logits are near ties)")
    for col in ("id", "format", "result", "size", "max |diff|", "token agreement"):
        r.add_column(col)
    for _, a in archs:
        for fmt in FORMATS:
            with con.status(f"{a.id}: {fmt}"):
                try:
                    art = export(a, fmt, args.out)
                except ExportError as e:
                    r.add_row(a.id, fmt, f"[red]failed[/]: {e}", "", "", "")
                    continue
            par = art.parity or {}
            r.add_row(a.id, fmt, "[green]ok[/]", f"{art.size_bytes / 1024:,.0f} KiB",
                      f"{par['max_abs_diff']:.1e}" if par else "-",
                      f"{par['token_agreement']:.1%}" if par else "-")
    con.print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
