"""export -> prepare -> measure -> store, for N sampled architectures.

Resumable: the architectures are ``space.sample_distinct(n, seed)`` (the
first k of a larger n are the same k), and every stored key is skipped. An
architecture that fails to export or run is stored with its reason; a device
that drops off (DeviceUnavailable) stops the run, keeping every stored row --
unless another phone of the pool can take its work, or the executor can tell
when it is back (a Ray cluster), in which case the run waits for it.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas import tasks
from hwnas.adapters import Adapter, DeviceUnavailable, Plan
from hwnas.adapters.devicefile import DeviceSpec
from hwnas.errors import first_line
from hwnas.execution import LocalExecutor, WorkerLost
from hwnas.profiling.measure import row_key
from hwnas.profiling.store import ProfileStore, profile_dir, profile_name
from hwnas.profiling.units import Export, Measure
from hwnas.space import SearchSpace
from hwnas.space.space import Arch


@dataclass
class ProfileRun:
    spec: DeviceSpec
    workspace: Path
    n: int
    seed: int
    space: SearchSpace
    fmt: str | None = None
    plan: Plan | None = None
    keep_models: bool = False
    retry_failed: bool = False
    repeats: int = 1         # independent measurements per architecture (later passes
                             # run after the whole first pass, at another time)
    archs: list[Arch] | None = None  # measure these instead of sampling n
    executor: Any = None     # where measurements run (default: this process)
    phones: list[str] | None = None  # device names that may measure (default: the device)
    phone_wait_s: float = 600.0      # how long to wait when every phone is lost
    say: Callable[[str], None] | None = None   # one line per event (a phone lost, back)
    task: str = tasks.DEFAULT        # whose architectures the space holds (hwnas.tasks)
    stored_rows: int = 0     # rows in the profile after the last run()
    notes: list[str] = field(default_factory=list)  # what opening the store recovered

    @property
    def folder(self) -> Path:
        return profile_dir(self.workspace, profile_name(self.spec.name, self.task))

    def store(self) -> ProfileStore:
        return ProfileStore(self.folder, self.spec.name, create=True,
                            device_file=Path(self.spec.source).read_text())

    @staticmethod
    def reference(store: ProfileStore, adapter: Adapter) -> float | None:
        """The reference workload's nominal ms for this profile, calibrated once
        when the profile starts so that every later run shares the same scale."""
        ref = store.manifest.get("reference")
        if ref is None:
            nominal = adapter.calibrate_reference()
            if nominal is None:
                return None
            ref = {"workload": adapter.describe().get("reference"), "nominal_ms": nominal,
                   "calibrated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
            store.set_meta("reference", ref)
        return float(ref["nominal_ms"])

    def todo(self, store: ProfileStore, adapter: Adapter) -> list[tuple[Arch, int]]:
        """(architecture, repeat) pairs not stored yet, pass by pass."""
        fmt = self.fmt or adapter.format
        keys = store.keys()
        if self.retry_failed:
            keys = keys - store.failed_keys()
        archs = self.archs if self.archs is not None else \
            self.space.sample_distinct(self.n, self.seed)
        archs = list({a.id: a for a in archs}.values())  # an architecture once per pass
        return [(a, r) for r in range(1, self.repeats + 1) for a in archs
                if row_key(a.id, fmt, r) not in keys]

    def drive(self, measure: Callable[[ProfileRun], Any] | None = None) -> None:
        """Measure everything missing: through ``measure(self)`` (e.g. under a
        progress bar), or silently."""
        if measure is not None:
            measure(self)
        else:
            for _ in self.run():
                pass

    def collect(self, on_row: Callable[[dict[str, Any]], None] | None = None
                ) -> list[dict[str, Any]]:
        """Measure what is missing; the new rows (each also to ``on_row``)."""
        rows = []
        for row in self.run():
            rows.append(row)
            if on_row:
                on_row(row)
        return rows

    def phone_names(self) -> list[str]:
        return list(dict.fromkeys(self.phones or [self.spec.name]))

    def run(self, on_start: Callable[[int, int], None] | None = None,
            ) -> Iterator[dict[str, Any]]:
        """Measure what is missing; yields each stored row."""
        adapter = self.spec.make()
        if self.fmt is not None and self.fmt not in adapter.formats:
            raise ValueError(f"device {self.spec.name} runs {', '.join(adapter.formats)}, "
                             f"not {self.fmt}")
        executor = self.executor or LocalExecutor()
        remote = executor.device_available(self.spec.name) is not None
        if not remote:   # the device is this host's: check it before anything is exported
            why = adapter.check()
            if why is not None:
                raise DeviceUnavailable(f"device {self.spec.name}: {why}")
        from hwnas.paths import held

        # one writer per profile: a second command on it waits, then measures what is left
        with held(self.folder.parent / f".{self.folder.name}.lock",
                  f"the profile {self.folder.name}"):
            store = self.store()
            self.notes = list(store.notes)
            todo = self.todo(store, adapter)
            if on_start:
                on_start(len(todo), len(store))
            plan = self.plan or self.spec.plan
            nominal = None if remote and "reference" not in store.manifest else \
                self.reference(store, adapter)
            if adapter.runs_on_host and not remote:
                record_host(store)
            cache = Path(tempfile.mkdtemp(prefix="hwnas-profile-"))
            ctx = getattr(executor, "ctx", None)
            if ctx is not None:   # in this process: the units use the adapter opened here
                ctx.share(("adapter", self.spec.name), adapter)
            fmt = self.fmt or adapter.format
            pool = PhonePool(self.phone_names(), executor, self.phone_wait_s, self.say)

            def export(arch: Arch, rep: int) -> Any:
                return executor.submit(Export(arch.to_dict(), fmt, str(cache), rep))

            def measure(phone: str, row: dict[str, Any], art: Any) -> Any:
                return executor.submit(Measure(phone, str(self.workspace), row, art, asdict(plan),
                                               nominal))

            try:
                # the results come back here: this process alone writes the store
                for arch, row in pipeline(todo, export, measure, pool,
                                          ahead=len(pool.phones) + 1):
                    row["seed"] = self.seed
                    store.append(row, replace_failed=self.retry_failed)
                    if not self.keep_models:
                        shutil.rmtree(cache / arch.id, ignore_errors=True)
                    yield row
            finally:
                store.compact()
                self.stored_rows = len(store)
                adapter.close()
                if self.keep_models:
                    keep = self.workspace / "runs" / "profile-models" / self.spec.name
                    keep.mkdir(parents=True, exist_ok=True)
                    for d in cache.iterdir():
                        shutil.rmtree(keep / d.name, ignore_errors=True)
                        shutil.move(str(d), keep / d.name)
                shutil.rmtree(cache, ignore_errors=True)


class PhonePool:
    """The phones a profile's measurements may run on (interchangeable: the
    same model, the same device file but for the serial). A phone that is
    lost is set aside; its work goes to the others. When every phone is lost,
    the pool waits (up to ``wait_s``) for one to be advertised again where the
    executor can tell, and otherwise gives up with the last reason."""

    RECHECK_S = 5.0
    GONE_S = 10.0    # a measurement whose phone is not advertised this long is given up

    def __init__(self, phones: list[str], executor: Any, wait_s: float,
                 say: Callable[[str], None] | None = None) -> None:
        self.phones = phones
        self.executor = executor
        self.wait_s = wait_s
        self.say = say or (lambda line: None)
        self.down: dict[str, float] = {}      # phone -> when it was lost
        self.gone: dict[str, float] = {}      # phone -> first seen unadvertised mid-measurement
        self.last_error: BaseException | None = None
        for p in phones:
            if executor.device_available(p) is False:
                self.down[p] = time.monotonic()
                self.say(f"{p}: no node advertises it (is `hwnas lab join` running on its "
                         "bench host?); waiting for it")

    def up(self) -> list[str]:
        return [p for p in self.phones if p not in self.down]

    def lost(self, phone: str, error: BaseException) -> None:
        self.down[phone] = time.monotonic()
        self.last_error = error
        others = self.up()
        if others:
            self.say(f"{phone} lost ({first_line(error)}); its work moves to "
                     f"{', '.join(others)}")
        elif self.executor.device_available(phone) is not None:   # it can be seen again
            self.say(f"{phone} lost ({first_line(error)}); waiting for it to come back "
                     f"(up to {self.wait_s / 60:g} min)")

    def orphans(self, measuring: dict[Any, tuple]) -> list[Any]:
        """In-flight measurements whose phone nobody has advertised for
        ``GONE_S``: abandoned (the executor stops them where it can)."""
        now = time.monotonic()
        out = []
        for f, (phone, *_rest) in measuring.items():
            if self.executor.device_available(phone) is False:
                if now - self.gone.setdefault(phone, now) > self.GONE_S:
                    self.executor.abandon(f)
                    out.append(f)
            else:
                self.gone.pop(phone, None)
        return out

    def recheck(self) -> None:
        """Bring back phones the executor advertises again; give up when all
        are down for longer than ``wait_s`` (or the executor cannot tell)."""
        now = time.monotonic()
        for p, since in list(self.down.items()):
            if now - since >= self.RECHECK_S and self.executor.device_available(p):
                del self.down[p]
                self.say(f"{p} is back")
        if self.down and not self.up():
            waited = now - max(self.down.values())
            if self.executor.device_available(self.phones[0]) is None or waited > self.wait_s:
                err = self.last_error or DeviceUnavailable(
                    f"no phone of {', '.join(self.phones)} is advertised")
                raise err if isinstance(err, DeviceUnavailable) else \
                    DeviceUnavailable(first_line(err))


def pipeline(todo: list[tuple[Arch, int]], export: Callable[[Arch, int], Any],
             measure: Callable[[str, dict[str, Any], Any], Any], pool: PhonePool,
             ahead: int) -> Iterator[tuple[Arch, dict[str, Any]]]:
    """Exports (host work, at most ``ahead`` in flight) feed measurements (one
    in flight per phone). Yields (architecture, finished row) as they finish.
    A unit lost with its phone or worker is measured again on another phone;
    with an in-process executor everything runs in order, one at a time."""
    waiting = list(todo)
    exporting: dict[Any, Arch] = {}
    ready: deque[tuple[Arch, dict[str, Any], Any]] = deque()
    measuring: dict[Any, tuple[str, Arch, dict[str, Any], Any]] = {}
    used: dict[str, int] = {}
    while waiting or exporting or ready or measuring:
        while waiting and len(exporting) + len(ready) < ahead:
            arch, rep = waiting.pop(0)
            exporting[export(arch, rep)] = arch
        busy = {m[0] for m in measuring.values()}
        # the least used free phone first: the work (and the heat) is spread
        for phone in sorted(pool.up(), key=lambda p: used.get(p, 0)):
            if ready and phone not in busy:
                arch, row, art = ready.popleft()
                measuring[measure(phone, row, art)] = (phone, arch, row, art)
                used[phone] = used.get(phone, 0) + 1
        if not exporting and not measuring:
            pool.recheck()   # everything left waits for a phone
            time.sleep(0.2 if pool.down else 0)
            continue
        done, _ = wait([*exporting, *measuring], timeout=1.0, return_when=FIRST_COMPLETED)
        for f in done:
            if f in exporting:
                arch = exporting.pop(f)
                row, art = f.result()
                if art is None:
                    yield arch, row            # a failed export is a finished row
                else:
                    ready.append((arch, row, art))
                continue
            phone, arch, row, art = measuring.pop(f)
            try:
                yield arch, f.result()
            except (DeviceUnavailable, WorkerLost) as e:
                pool.lost(phone, e)
                ready.appendleft((arch, row, art))
        for f in pool.orphans(measuring):
            phone, arch, row, art = measuring.pop(f)
            pool.lost(phone, WorkerLost("no node advertises it any more"))
            ready.appendleft((arch, row, art))
        if pool.down:
            pool.recheck()


def record_host(store: ProfileStore) -> None:
    """lscpu's model name and whole flags line, once per CPU kind that adds rows
    to this profile (the rows carry the short descriptor)."""
    from hwnas.adapters.host import cpu_descriptor, cpuinfo

    d = cpu_descriptor()
    key = f"{d['model_name']} ({d['family_model']})"
    hosts = dict(store.manifest.get("hosts") or {})
    if key in hosts:
        return
    hosts[key] = {**d, "flags": cpuinfo().get("flags", ""),
                  "recorded": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    store.set_meta("hosts", hosts)

