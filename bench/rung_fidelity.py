"""Do the search's rungs predict the end of training, or only its start?

    python -m bench.rung_fidelity --n 20                 (~20 x 6 CPU-min; resumable)
    python -m bench.rung_fidelity --report               (seconds: the taus only)
    python -m bench.rung_fidelity --floors 400,1000      (~20 x 3 CPU-min: the rungs
                                                          of the search, with floors)

Architectures are drawn (seed 11) from the space the main command searches
(`--streaming --max-delay 500`: streaming, chunks of 240 and 480 ms), keeping
those whose algorithmic delay leaves at least 5 ms for compute. Each trains
on the built-in English corpus of the workspace (small, seed 0; built if
missing) exactly as a search trial trains (one thread, CPU-time budgets, seed
0), continued stage by stage to each budget of --budgets (default the main
command's rungs, 40 s and 120 s, then 240 s and 360 s), with the full dev CER
at every stage and a dev curve every 50 steps (50 utterances, not charged).
Breadth first: every architecture reaches a budget before any goes further.

Every finished stage is appended to bench/results/rung_fidelity.jsonl
(committed, so the run spans sittings); a rerun continues each architecture
from its last snapshot in <workspace>/bench/rung_fidelity/. Reported: Kendall
tau between each budget's dev CER and every later budget's, over the
architectures that reached both.

With --floors, the first budgets (the rungs) are trained again from scratch
as the search trains them now: each rung lasts its seconds and at least its
floor of updates, stretched to at most twice its seconds
(``hwnas.training.halving.floor_options``); their dev CERs are ranked
against the plain run's last budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library

LOG = ROOT / "bench" / "results" / "rung_fidelity.jsonl"


def archs(n: int) -> list:
    from hwnas.asr import default_space
    from hwnas.asr.delay import algorithmic_delay_ms, narrow

    space, _ = narrow(default_space(), streaming=True, max_delay_ms=500)
    out = [a for a in space.sample_distinct(4 * n, 11) if algorithmic_delay_ms(a) <= 495]
    return out[:n]


def key(budget: float, floor: int = 0) -> float | str:
    """A stage's name in the log: its budget, or "budget/floor" for a floored rung."""
    return f"{budget:g}/{floor}" if floor else float(budget)


def read_log() -> dict[str, dict[float | str, dict]]:
    done: dict[str, dict[float | str, dict]] = {}
    if LOG.is_file():
        for line in LOG.read_text().splitlines():
            r = json.loads(line)
            done.setdefault(r["arch_id"], {})[key(r["budget_s"], r.get("floor", 0))] = r
    return done


def run(ws: Path, n: int, budgets: list[float], floors: list[int]) -> None:
    import torch

    from hwnas.asr.train import TrainConfig, load_snapshot, train
    from hwnas.training.halving import floor_options
    from hwnas.training.prepare import open_corpus

    torch.set_num_threads(1)
    corpus = open_corpus(ws)
    corpus.prepare()
    tok = corpus.tokenizer
    done = read_log()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    chosen = archs(n)
    # breadth first: every architecture reaches a budget before any goes further,
    # so that a sitting cut short still gives the taus up to the last budget reached
    stages = list(zip(budgets[:len(floors)], floors)) if floors else [(b, 0) for b in budgets]
    folder = "rung_fidelity_floors" if floors else "rung_fidelity"
    for b, floor in stages:
        for i, arch in enumerate(chosen):
            if key(b, floor) in done.get(arch.id, {}):
                continue
            sp = corpus.splits(arch.frontend, arch.n_filters)
            snap = ws / "bench" / folder / arch.id / "checkpoint.pt"
            # the floored rungs are ranked by their end alone: no dev curve on the way
            cfg = TrainConfig(cpu_seconds=b, seed=0, snapshot=snap, snapshot_every_s=60,
                              eval_every=10**9 if floors else 50, eval_utts=50,
                              **floor_options(b, floor))
            state = load_snapshot(snap, arch, cfg, tok.vocab_size) if snap.is_file() else None
            res = train(arch, sp.train, sp.dev, tok, cfg, resume=state)
            rec = {"arch_id": arch.id, "arch": arch.to_dict(), "budget_s": b,
                   **({"floor": floor} if floor else {}),
                   "dev_cer": res.dev["cer"], "steps": res.steps,
                   "cpu_seconds": res.cpu_seconds, "curve": res.curve}
            with LOG.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            done.setdefault(arch.id, {})[key(b, floor)] = rec
            print(f"[{i + 1}/{n}] {arch.id} {arch.encoder}/{arch.decoder} x{arch.num_layers} "
                  f"d{arch.d_model}: {key(b, floor)} -> {res.cpu_seconds:g} CPU s, "
                  f"{res.steps} steps, dev CER {res.dev['cer']:.3f}", flush=True)


def _at(rec: dict, budget: float) -> dict:
    """What a rung of ``budget`` saw: its dev CER (all of dev), and the last
    point of its curve (train loss, steps)."""
    p = [c for c in rec["curve"] if c["cpu_s"] <= budget + 1.0][-1]
    return {"dev_cer": rec["dev_cer"], "loss": p["loss"], "steps": rec["steps"]}


def rules(done: dict, ids: list[str], cut: float, last: float) -> dict[str, list[float]]:
    """Each promotion rule's estimate of the final CER, given only what the rung
    at ``cut`` saw (held out one architecture at a time where fitted)."""
    import numpy as np

    from bench.proxy_fidelity import power_law_extrapolation
    from hwnas.asr import ArchConfig
    from hwnas.predict.cer import EARLY, CERPredictor

    early = {k: _at(done[k][cut], cut) for k in ids}
    out = {"dev CER at the rung": [early[k]["dev_cer"] for k in ids]}
    # the rung's own dev curve (50 utterances every 50 steps), extended to the final budget
    curves = {k: {"curve": [c for c in done[k][cut]["curve"] if c["cpu_s"] <= cut + 1.0]}
              for k in ids}
    out["power law on the rung's dev curve"] = [
        power_law_extrapolation(curves[k], cut, last)
        if sum(c["cpu_s"] >= 60 for c in curves[k]["curve"]) >= 3   # its fit starts at 60 s
        else early[k]["dev_cer"] for k in ids]
    if len(ids) >= 9:
        recs = [{"arch": done[k][cut]["arch"], "final_cer": done[k][last]["dev_cer"],
                 "early_cer": early[k]["dev_cer"], "early_loss": early[k]["loss"],
                 "early_steps": early[k]["steps"]} for k in ids]
        pred = []
        for i, r in enumerate(recs):
            model = CERPredictor.fit(recs[:i] + recs[i + 1:], max_depth=2)
            pred.append(float(model.predict([ArchConfig.from_dict(r["arch"])],
                                            np.array([[r[k] for k in EARLY]]))[0]))
        out["CER predictor, leave one out (PREDICTED)"] = pred
    return out


def report(budgets: list[float], floors: list[int]) -> dict:
    """Kendall tau of each earlier budget's dev CER against each later one's,
    over the architectures that reached both, and of each promotion rule."""
    from hwnas.predict.metrics import kendall_tau

    done = read_log()
    out: dict = {"tau": {}}
    for j, last in enumerate(budgets[1:], 1):
        ids = sorted(k for k, v in done.items() if all(b in v for b in budgets[:j + 1]))
        if len(ids) < 3:
            continue
        final = [done[k][last]["dev_cer"] for k in ids]
        for b in budgets[:j]:
            for name, est in rules(done, ids, b, last).items():
                tau = kendall_tau(est, final)
                out["tau"][f"{b:g}->{last:g}: {name}"] = {"tau": tau, "n": len(ids)}
                print(f"  rung {b:>4g} CPU s -> {last:g}: {name:<42} Kendall tau {tau:.3f} "
                      f"({len(ids)} architectures)")
    last = budgets[-1]
    for b, floor in zip(budgets, floors):
        ids = sorted(k for k, v in done.items() if key(b, floor) in v and last in v)
        if len(ids) < 3:
            continue
        tau = kendall_tau([done[k][key(b, floor)]["dev_cer"] for k in ids],
                          [done[k][last]["dev_cer"] for k in ids])
        cost = sum(done[k][key(b, floor)]["cpu_seconds"] for k in ids) / len(ids)
        out["tau"][f"{key(b, floor)}->{last:g}: dev CER at the rung"] = {
            "tau": tau, "n": len(ids), "mean_cpu_s": cost}
        print(f"  rung {b:>4g} CPU s, >= {floor} updates -> {last:g}: dev CER at the rung   "
              f"Kendall tau {tau:.3f} ({len(ids)} architectures; the rung took "
              f"{cost:.0f} CPU s on average)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "workspace"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--budgets", default="40,120,240,360",
                    help="CPU seconds, increasing; the last is the final budget")
    ap.add_argument("--floors", default="",
                    help="updates, one per rung (the first budgets): train the rungs again "
                         "with these floors")
    ap.add_argument("--report", action="store_true", help="only the taus of what is logged")
    args = ap.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    floors = [int(f) for f in args.floors.split(",") if f]
    if len(floors) >= len(budgets):
        ap.error("--floors: one per rung, and the last budget (the final one) has none")
    if not args.report:
        run(Path(args.workspace).resolve(), args.n, budgets, floors)
    report(budgets, floors or [400, 1000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
