"""Export N sampled architectures to every format and print a success matrix
by encoder family and format, with the failure reasons.

    python -m bench.export_matrix [--n 50] [--seed 0] [--out runs/export_matrix]

Resumable: results go to OUT/results.jsonl as they finish; a rerun skips
what is there. Conversions run one at a time on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import bench.harness  # noqa: E402,F401 - first: one thread for every library
from hwnas.asr import default_space  # noqa: E402
from hwnas.export import FORMATS, ExportError, export  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/export_matrix"))
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--reverse", action="store_true",
                   help="work from the last architecture back (a second process on the other "
                        "core shares the results file)")
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    formats = a.formats.split(",")
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "results.jsonl"
    archs = default_space().sample_distinct(a.n, a.seed)
    order = list(enumerate(archs, 1))
    t_start = time.time()
    with log.open("a") as f:
        for i, arch in reversed(order) if a.reverse else order:
            done = _done(log)  # re-read: a second process may share the log
            for fmt in formats:
                if (arch.id, fmt) in done:
                    continue
                t0 = time.time()
                row = {"arch_id": arch.id, "encoder": arch.encoder, "decoder": arch.decoder,
                       "attention": arch.attention, "streaming": arch.streaming, "format": fmt}
                try:
                    art = export(arch, fmt, a.out / "models")
                    row.update(ok=True, parity=art.parity, size_bytes=art.size_bytes)
                except ExportError as e:
                    row.update(ok=False, reason=str(e))
                row["seconds"] = round(time.time() - t0, 1)
                f.write(json.dumps(row) + "\n")
                f.flush()
                status = "ok" if row["ok"] else f"FAIL {row['reason']}"
                print(f"[{i}/{len(archs)}] {arch.id} {arch.encoder:<11} {fmt:<15} "
                      f"{row['seconds']:6.1f}s {status}", flush=True)
    latest = {(r["arch_id"], r["format"]): r for r in map(json.loads, log.read_text().splitlines())}
    ids = {x.id for x in archs}
    rows = [r for r in latest.values() if r["arch_id"] in ids and r["format"] in formats]
    report(rows, formats)
    print(f"\n{len(archs)} architectures (seed {a.seed}); {time.time() - t_start:.0f} s this run")
    return 0


def _done(log: Path) -> set[tuple[str, str]]:
    if not log.exists():
        return set()
    return {(r["arch_id"], r["format"]) for r in map(json.loads, log.read_text().splitlines())}


def report(rows: list[dict], formats: list[str]) -> None:
    cell: dict[tuple[str, str], list[bool]] = defaultdict(list)
    reasons: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in rows:
        cell[(r["encoder"], r["format"])].append(r["ok"])
        cell[("all", r["format"])].append(r["ok"])
        if not r["ok"]:
            reasons[r["format"]][_short(r["reason"])][r["encoder"]] += 1
    families = sorted({r["encoder"] for r in rows}) + ["all"]
    head = f"| family | {' | '.join(formats)} |"
    print(head)
    print("|" + "---|" * (len(formats) + 1))
    for fam in families:
        cells = []
        for fmt in formats:
            v = cell.get((fam, fmt), [])
            cells.append(f"{sum(v)}/{len(v)}" if v else "-")
        print(f"| {fam} | {' | '.join(cells)} |")
    print("\nparity vs PyTorch on 20 held-out inputs (random weights), successful exports:")
    for fmt in formats:
        par = [r["parity"] for r in rows if r["ok"] and r["format"] == fmt and r.get("parity")]
        if not par:
            continue
        diffs = sorted(p["max_abs_diff"] for p in par)
        agree = sorted(p["token_agreement"] for p in par)
        line = (f"  {fmt:<15} n={len(par):3d}  max |diff| median {diffs[len(diffs) // 2]:.1e}, "
                f"worst {diffs[-1]:.1e}; token agreement median {agree[len(agree) // 2]:.1%}, "
                f"min {agree[0]:.1%}")
        sqnr = sorted(p["logits_sqnr_db"] for p in par if "logits_sqnr_db" in p)
        if sqnr:
            line += f"; logits SQNR median {sqnr[len(sqnr) // 2]:.1f} dB"
        print(line)
    for fmt in formats:
        if reasons[fmt]:
            print(f"\n{fmt} failures:")
            for why, fams in sorted(reasons[fmt].items(), key=lambda kv: -sum(kv[1].values())):
                who = ", ".join(f"{f} {n}" for f, n in fams.most_common())
                print(f"  {sum(fams.values()):3d} x {why} ({who})")


def _short(reason: str) -> str:
    return reason if len(reason) < 140 else reason[:137] + "..."


if __name__ == "__main__":
    sys.exit(main())
