"""`hwnas search --task tts`: a multi-objective search over the TTS space,
measured on the target device.

Each trial's architecture (Optuna's NSGA-II over the decision graph) is
exported and measured on the target first (its RTF; rows go to the profile
``<target>.tts`` and are reused). One over ``max_rtf`` is told as
infeasible (NSGA-II's constraint) without being trained; the others train
``train_s`` CPU-seconds on the built-in TTS data and report their dev MCD.
The study lives in Optuna storage (SQLite by default), so a stopped search
continues where it stopped. At the end the feasible Pareto set is measured
again (a second, independent measurement), its verdict decided with the
measurement's interval, and the best verified model is exported with its
trained weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.paths import write_atomic

OBJECTIVES = {"mcd": "dev MCD (dB)", "cer": "intelligibility CER (needs asr_run)",
              "rtf": "measured RTF", "params": "parameters"}
INTELLIGIBILITY_UTTS = 30   # dev sentences a trial's intelligibility is scored on


@dataclass
class TTSSearchRequest:
    target: str
    workspace: Path
    max_rtf: float | None = None
    objectives: tuple[str, ...] = ("mcd", "rtf", "params")
    trials: int = 12
    train_s: float = 60.0
    lang: str = "en"
    size: str = "small"
    seed: int = 0
    study: str = "tts"
    storage: str | None = None
    space: Any = None
    verify: bool = True
    export: bool = True
    format: str | None = None
    asr_run: Path | None = None         # the reference recogniser of the "cer" objective

    def check(self) -> None:
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives:
            raise ValueError(f"TTS objectives are {', '.join(OBJECTIVES)}; got "
                             f"{', '.join(bad) or 'none'}")
        if not {"mcd", "cer"} & set(self.objectives):
            raise ValueError("a TTS search needs a quality objective: mcd or cer")
        if "cer" in self.objectives and self.asr_run is None:
            raise ValueError("the cer objective (intelligibility) needs --asr-run RUN, a "
                             "`hwnas train` run that transcribes the synthesised speech")
        if self.asr_run is not None and not Path(self.asr_run).is_dir():
            raise ValueError(f"--asr-run {self.asr_run}: no such folder")
        if self.max_rtf is not None and not self.max_rtf > 0:
            raise ValueError(f"--max-rtf must be > 0, got {self.max_rtf:g}")
        if self.trials < 1 or self.train_s <= 0:
            raise ValueError("--trials must be >= 1 and the training budget > 0")


def _measure(spec: Any, ws: Path, archs: list[Any], repeats: int = 1,
             drive: Callable[[Any], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """arch id -> its stored rows on the target (measured now where missing)."""
    from hwnas.profiling.profiler import ProfileRun
    from hwnas.tts import default_space

    run = ProfileRun(spec, ws, len(archs), 0, default_space(), archs=archs, repeats=repeats,
                     task="tts")
    run.drive(drive)
    ids = {a.id for a in archs}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in run.store().rows():
        if r["arch_id"] in ids:
            out.setdefault(r["arch_id"], []).append(r)
    return out


def _rtf(rows: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """(RTF, its upper 95% bound) from the ok rows (None when none is usable)."""
    ok = [r for r in rows if r.get("status") in ("ok", "flagged") and r.get("rtf")]
    if not ok:
        return None, None
    rtf = float(sorted(r["rtf"] for r in ok)[(len(ok) - 1) // 2])
    # ``ci``: the relative half-width of each median's 95% interval
    hi = max(r["rtf"] * (1.0 + (r.get("ci") or 0.0)) for r in ok)
    return rtf, float(hi)


def run_search(req: TTSSearchRequest, say: Callable[[str], None] = lambda _: None,
               on_trial: Callable[[dict[str, Any]], None] = lambda _: None,
               drive: Callable[[Any], None] | None = None) -> dict[str, Any]:
    import optuna

    from hwnas import tasks
    from hwnas.adapters.devicefile import load_device
    from hwnas.search.storage import open_storage, study_paths
    from hwnas.tts import data, default_space
    from hwnas.tts.run import save
    from hwnas.tts.train import TTSTrainConfig, train

    req.check()
    ws = Path(req.workspace)
    spec = load_device(req.target, ws)
    db, folder = study_paths(ws, req.study)
    db.parent.mkdir(parents=True, exist_ok=True)
    url = req.storage or f"sqlite:///{db}"
    space = req.space or default_space()
    root = data.data_dir(ws, req.lang, req.size, req.seed)
    if not (root / "phonemes.json").is_file():
        n = sum(data.SIZES[req.size])
        say(f"synthesising the TTS data ({n} {req.lang} sentences, once) into {root} ...")
    root = data.build(ws, req.lang, req.size, req.seed)
    phon = data.PhonemeSet.of(root)
    tr, dv = data.load_split(root, "train"), data.load_split(root, "dev")
    limit = req.max_rtf

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    # the default storage keeps heartbeats for `hwnas search`'s drivers; this
    # loop asks and tells itself, one trial at a time
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    sampler = optuna.samplers.NSGAIISampler(seed=req.seed, population_size=max(4, min(
        20, req.trials // 3)))   # the RTF limit reaches it by trial.set_constraint
    study = optuna.create_study(study_name=req.study, storage=open_storage(url),
                                sampler=sampler, load_if_exists=True,
                                directions=["minimize"] * len(req.objectives))
    study.set_user_attr("task", "tts")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        say(f"study {req.study}: {len(done)} trials already done; continuing")
    while len(done) < req.trials:
        trial = study.ask()
        arch = space.suggest(trial, n_phonemes=len(phon))
        rtf, hi = _rtf(_measure(spec, ws, [arch], drive=drive).get(arch.id, []))
        params = tasks.stats(arch)["params"]
        rec = {"trial": trial.number, "arch_id": arch.id, "rtf": rtf, "rtf_hi": hi,
               "params": params}
        trial.set_user_attr("arch", arch.to_dict())
        if rtf is not None and limit is not None:
            trial.set_constraint("rtf", rtf - limit)
        if rtf is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            rec["verdict"] = "failed to measure"
        elif limit is not None and rtf > limit:
            trial.set_user_attr("rtf_excess", rtf - limit)
            # untrained: never on a front
            values = {"mcd": 1e3, "cer": 10.0, "rtf": rtf, "params": params}
            study.tell(trial, [values[o] for o in req.objectives])
            rec["verdict"] = f"over the RTF limit ({rtf:.4f} > {limit:g}); not trained"
        else:
            out = folder / "trials" / f"{trial.number:05d}-{arch.id}"
            res = train(arch, tr, dv, phon, TTSTrainConfig(cpu_seconds=req.train_s,
                                                           seed=req.seed,
                                                           snapshot=out / "snapshot.pt"))
            save(res, out, root, dv, phon)
            values = {"mcd": res.dev["mcd_db"], "rtf": rtf, "params": params}
            if req.asr_run is not None:
                from hwnas.tts.intelligibility import score

                heard = score(out, Path(req.asr_run), INTELLIGIBILITY_UTTS)
                values["cer"] = heard["model"]["cer"]
                res.dev["cer"] = values["cer"]
                res.dev["cer_ceiling"] = heard["espeak"]["cer"]
            for k, v in res.dev.items():
                trial.set_user_attr(f"dev_{k}", v)
            trial.set_user_attr("run", str(out))
            study.tell(trial, [values[o] for o in req.objectives])
            rec.update(verdict="trained", run=str(out), **{f"dev_{k}": v
                                                            for k, v in res.dev.items()})
        on_trial(rec)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return _finish(req, study, spec, ws, folder, say, drive)


def _finish(req: TTSSearchRequest, study: Any, spec: Any, ws: Path, folder: Path,
            say: Callable[[str], None], drive: Callable[[Any], None] | None) -> dict[str, Any]:
    from hwnas import tasks

    feasible = [t for t in study.best_trials if "run" in t.user_attrs
                and t.user_attrs.get("rtf_excess", 0.0) == 0.0]
    front = []
    quality = "dev_cer" if "cer" in req.objectives else "dev_mcd_db"
    for t in sorted(feasible, key=lambda t: t.user_attrs[quality]):
        arch = tasks.arch_from_dict(t.user_attrs["arch"])
        row = {"trial": t.number, "arch_id": arch.id, "arch": arch.to_dict(),
               "mcd_db": t.user_attrs["dev_mcd_db"], "mel_l1": t.user_attrs["dev_mel_l1"],
               "params": tasks.stats(arch)["params"], "run": t.user_attrs["run"]}
        if "dev_cer" in t.user_attrs:
            row.update(cer=t.user_attrs["dev_cer"], cer_ceiling=t.user_attrs["dev_cer_ceiling"])
        if req.verify:   # a second measurement, at another time
            rows = _measure(spec, ws, [arch], repeats=2, drive=drive)[arch.id]
            rtf, hi = _rtf(rows)
            row.update(rtf=rtf, rtf_hi=hi, measurements=len(rows))
            if req.max_rtf is None or (hi is not None and hi <= req.max_rtf):
                row["verdict"] = "verified"
            elif rtf is not None and rtf <= req.max_rtf:
                row["verdict"] = "borderline (the limit is inside the interval)"
            else:
                row["verdict"] = "over the limit when measured again"
        front.append(row)
    summary: dict[str, Any] = {"study": req.study, "target": req.target, "task": "tts",
                               "max_rtf": req.max_rtf, "objectives": list(req.objectives),
                               "trials": len(study.trials), "pareto": front}
    best = next((r for r in front if r.get("verdict", "verified") == "verified"), None)
    if best is None:
        say("no verified model on the front: nothing exported")
    elif req.export:
        from hwnas.export import export

        fmt = req.format or spec.make().format
        run = Path(best["run"])
        trained = tasks.arch_from_json((run / "arch.json").read_text())
        art = export(trained, fmt, folder / "export", weights=run / "weights.pt")
        summary["export"] = {"format": fmt, "path": art.path, "trial": best["trial"],
                             "parity": art.parity}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "result.json", json.dumps(summary, indent=2, default=str) + "\n")
    summary["result"] = str(folder / "result.json")
    return summary


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both minimised) up to ``ref``."""
    pts = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    area, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area if math.isfinite(area) else 0.0
