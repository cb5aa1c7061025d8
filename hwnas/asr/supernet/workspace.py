"""Supernets in a workspace: one folder per (family, space, corpus, seed)
under ``<workspace>/supernets/``, trained to a budget and continued when a
larger budget is asked for (`hwnas supernet train`, or a search with
``--cer-source supernet`` that finds none)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwnas.asr.supernet.elastic import ElasticSupernet
from hwnas.asr.supernet.sandwich import (
    SupernetConfig,
    load_snapshot,
    load_supernet,
    save_supernet,
    train_supernet,
)
from hwnas.nn.fit import OtherDevice, clock_kind, train_device
from hwnas.space import SearchSpace
from hwnas.state import NUMBER, Shape, StateError, read_json, write_json


def family_space(space: SearchSpace, family: str) -> SearchSpace:
    return space.with_choices({"encoder": [family]})


def supernet_dir(ws: Path, family: str, space: SearchSpace, corpus: dict[str, Any],
                 seed: int) -> Path:
    """The folder of ``family``'s supernet over ``space`` trained on ``corpus``."""
    fam = family_space(space, family)
    what = json.dumps({"choices": {d.name: list(d.choices) for d in fam.decisions},
                       "corpus": corpus}, sort_keys=True, default=str)
    tag = hashlib.sha256(what.encode()).hexdigest()[:8]
    return Path(ws) / "supernets" / f"{family}-{tag}-s{seed}"


#: what a supernet's info.json holds (written by ``train_family``)
INFO_SHAPE = Shape("supernet info", required={"family": str, "steps": int,
                                              "cpu_seconds": NUMBER},
                   optional={"seed": int, "corpus": (dict, str, None), "curve": list,
                             "params": int, "clock": str, "precision": str, "device": str,
                             "device_name": str})


def trained_budget(folder: Path, clock: str | None = None) -> float:
    """Seconds the supernet in ``folder`` was trained (0: none there, an
    info.json that is not one, or one whose budget counted another ``clock``
    than asked: CPU seconds against device seconds)."""
    try:
        info = read_json(Path(folder) / "info.json", INFO_SHAPE)
    except StateError:
        return 0.0
    if clock is not None and info.get("clock", "cpu_seconds") != clock:
        return 0.0
    return float(info["cpu_seconds"])


def is_trained(folder: Path, budget_s: float, clock: str | None = None) -> bool:
    """Whether ``folder`` holds a supernet trained for at least ``budget_s``
    seconds (of ``clock``'s kind, where given)."""
    return (trained_budget(folder, clock) >= budget_s
            and (Path(folder) / "supernet.pt").is_file())


def held_supernet(ws: Path, family: str, spaces: Any, corpus: dict[str, Any], seed: int,
                  budget_s: float = 0.0, device: str | None = None) -> Path | None:
    """The folder of a supernet of ``family`` trained at least ``budget_s``
    seconds on ``corpus`` (CPU seconds, or device seconds where ``device`` is an
    accelerator), for the first of ``spaces`` the workspace has one for (a
    search's own narrowed space first, then the whole space, which contains
    it); None where there is none. Without ``device`` (scoring, not training
    on), a supernet of either kind will do."""
    clock = clock_kind(train_device(device)) if device is not None else None
    for space in spaces:
        folder = supernet_dir(ws, family, space, corpus, seed)
        if is_trained(folder, max(budget_s, 1e-9), clock):
            return folder
    return None


def train_family(ws: Path, family: str, space: SearchSpace, corpus: Any, budget_s: float,
                 seed: int = 0, on_step: Callable[[int, float, dict], None] | None = None,
                 on_progress: Callable[[dict], None] | None = None,
                 say: Callable[[str], None] = lambda s: None, device: str | None = None,
                 precision: str = "auto") -> tuple[Path, dict[str, Any]]:
    """Train (or continue) ``family``'s supernet to ``budget_s`` seconds in
    total (CPU seconds; device seconds on an accelerator ``device``) at
    ``precision``; returns its folder and info. A folder whose supernet
    already had that budget is returned as it is; one trained on the other
    kind of device is refused in one line (ValueError)."""
    from hwnas.paths import held

    folder = supernet_dir(ws, family, space, corpus.description, seed)
    # commands sharing a workspace train it once: the second waits, then finds it trained
    with held(folder.parent / f".{folder.name}.lock", f"the {family} supernet {folder.name}"):
        return _train_family(folder, family, space, corpus, budget_s, seed, on_step,
                             on_progress, say, device, precision)


def _train_family(folder: Path, family: str, space: SearchSpace, corpus: Any, budget_s: float,
                  seed: int, on_step: Callable[[int, float, dict], None] | None,
                  on_progress: Callable[[dict], None] | None,
                  say: Callable[[str], None], device: str | None,
                  precision: str) -> tuple[Path, dict[str, Any]]:
    info_file = folder / "info.json"
    if info_file.exists():
        try:
            read_json(info_file, INFO_SHAPE)
        except StateError as e:   # written again from the snapshot's training
            from hwnas.paths import set_aside

            say(f"{e}; set aside as {set_aside(info_file, folder / 'set-aside')}")
    clock = clock_kind(train_device(device))
    if is_trained(folder, budget_s, clock):
        return folder, read_json(info_file, INFO_SHAPE)
    if trained_budget(folder, clock) == 0 < trained_budget(folder):
        raise ValueError(f"the {family} supernet in {folder} was trained on another kind of "
                         "device (its budget counted other seconds); continue it on the same "
                         "kind (--train-device)")
    tok = corpus.tokenizer
    net = ElasticSupernet(family_space(space, family), family, tok.vocab_size, seed=seed)
    snap = folder / "checkpoint.pt"
    cfg = SupernetConfig(cpu_seconds=budget_s, seed=seed, snapshot=snap, device=device,
                         precision=precision)
    resume = None
    if snap.is_file():
        try:
            resume = load_snapshot(snap, net, cfg)
            say(f"continuing the {family} supernet in {folder} from step {resume['step']} "
                f"({resume['cpu']:.0f} {'CPU' if clock == 'cpu_seconds' else 'device'} s)")
        except OtherDevice:
            raise
        except ValueError as e:   # kept, never overwritten: set aside
            from hwnas.paths import set_aside

            kept = set_aside(snap, folder / "set-aside")
            say(f"{e}; set aside as {kept}, starting over")
            net = ElasticSupernet(family_space(space, family), family, tok.vocab_size,
                                  seed=seed)
            if (folder / "supernet.pt").is_file():
                say(f"the finished supernet in {folder} ({trained_budget(folder):.0f} CPU s) "
                    f"stays as it is until the new one is trained; then it is set aside")
    res = train_supernet(net, lambda f, n: corpus.splits(f, n), tok, cfg, on_step=on_step,
                         on_progress=on_progress, resume=resume)
    info = {"family": family, "steps": res.steps, "cpu_seconds": res.cpu_seconds,
            "seed": seed, "corpus": corpus.description, "curve": res.curve,
            "params": sum(p.numel() for p in net.parameters()), "clock": clock,
            "precision": res.precision, **res.device}
    from hwnas.paths import set_aside, stamped

    if (folder / "supernet.pt").is_file() and resume is None:
        # trained from scratch beside a finished one: the finished one is kept
        old = stamped(folder / "set-aside", "replaced")
        for name in ("supernet.pt", "info.json"):
            if (folder / name).exists():
                set_aside(folder / name, old)
        say(f"the earlier supernet is kept in {old}")
    unchanged = resume is not None and res.steps == resume["step"] \
        and (folder / "supernet.pt").is_file()
    if not unchanged:   # (continued without a step: the finished weights are those already there)
        save_supernet(folder / "supernet.pt", net, info)
    write_json(info_file, info, INFO_SHAPE)
    return folder, info


def open_family(folder: Path) -> ElasticSupernet:
    return load_supernet(folder / "supernet.pt")[0]


def supernet_of(ctx: Any, folder: str | Path) -> Any:
    """The supernet saved in ``folder``, read once per worker (``WorkerContext``)."""
    return ctx.opened(("supernet", str(Path(folder).resolve())), lambda: open_family(Path(folder)))
