"""SearchSpace: owns the choices; counts, samples, mutates, crosses over,
suggests through Optuna and encodes architectures as feature vectors."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.space.decisions import Decision, default_decisions

if TYPE_CHECKING:
    import optuna

    from hwnas.space.arch import ArchConfig

_MIN_ZERO = ("left_chunks", "lookahead")
#: the largest value of each numeric field any device here could hold: an
#: architecture beyond these is refused before anything is allocated
MAX_VALUE = {"n_filters": 512, "num_layers": 64, "d_model": 4096, "heads": 64,
             "local_window": 4096, "ffn_ratio": 16, "conv_kernel": 255, "decoder_layers": 16,
             "decoder_dim": 4096, "chunk_ms": 10_000, "left_chunks": 1024, "lookahead": 64}
MAX_VOCAB = 100_000


def _pruned(decisions: list[Decision]) -> list[Decision]:
    """Drop choices that leave a later decision with nothing to choose (e.g.
    ``streaming = [true]`` rules out the bidirectional encoders): a value of a
    field goes when, with every combination of the other fields that decision
    reads, the decision applies and allows none of its choices."""
    from dataclasses import replace
    from itertools import product

    by = {d.name: d for d in decisions}
    changed = True
    while changed:
        changed = False
        for d in decisions:
            d = by[d.name]
            reads = [r for r in d.reads if r in by]
            if not reads:
                continue
            for i, r in enumerate(reads):
                keep = []
                for v in by[r].choices:
                    combos = product(*[[v] if j == i else by[o].choices
                                       for j, o in enumerate(reads)])
                    if any(not d.applies(dict(zip(reads, c))) or d.options(dict(zip(reads, c)))
                           for c in combos):
                        keep.append(v)
                if not keep:
                    raise ValueError(f"these choices leave {d.name!r} nothing to choose "
                                     f"({d.rule or 'its choices are all ruled out'})")
                if len(keep) < len(by[r].choices):
                    by[r] = replace(by[r], choices=tuple(keep))
                    changed = True
    return [by[d.name] for d in decisions]


class SearchSpace:
    """An ordered decision graph (see :mod:`hwnas.space.decisions`)."""

    def __init__(self, decisions: Sequence[Decision] | None = None) -> None:
        self.decisions: tuple[Decision, ...] = tuple(decisions or default_decisions())
        self._by_name = {d.name: d for d in self.decisions}
        # Fields read by decision i or any later one: the DP state at step i.
        live: list[tuple[str, ...]] = []
        acc: set[str] = set()
        for d in reversed(self.decisions):
            acc |= set(d.reads)
            live.append(tuple(sorted(acc)))
        self._live = list(reversed(live))

    # --- construction -------------------------------------------------------
    def with_choices(self, overrides: dict[str, Sequence[Any]]) -> SearchSpace:
        """A copy with some decisions' choice lists replaced."""
        from dataclasses import replace

        for name, values in overrides.items():
            if name not in self._by_name:
                raise ValueError(f"unknown decision {name!r}; known: {', '.join(self._by_name)}")
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"choices for {name!r} must be a non-empty list")
            base = self._by_name[name]
            for v in values:
                self._check_value(base, v, strict=False)
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:   # a choice twice would count twice and sample twice as often
                raise ValueError(f"choices for {name!r} repeat {', '.join(repeated)}; "
                                 "give each value once")
        return SearchSpace(_pruned([replace(d, choices=tuple(overrides[d.name]))
                                    if d.name in overrides else d for d in self.decisions]))

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchSpace:
        """Override choices from a TOML file: a ``[choices]`` table, e.g.
        ``encoder = ["conformer", "lstm"]``."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ValueError(f"space file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"space file {p} cannot be read: {getattr(e, 'strerror', None) or e}"
                             ) from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"space file {p} is not valid TOML: {e}") from None
        extra = sorted(set(data) - {"choices"})
        if extra:
            raise ValueError(f"space file {p}: unknown table(s) {extra}; expected [choices]")
        choices = data.get("choices", {})
        if not isinstance(choices, dict):
            raise ValueError(f"space file {p}: [choices] must be a table of lists, "
                             f"e.g. encoder = [\"conformer\", \"lstm\"]")
        try:
            return default_space().with_choices(choices)
        except ValueError as e:
            raise ValueError(f"space file {p}: {e}") from None

    # --- membership and validation ------------------------------------------
    def _check_value(self, d: Decision, v: Any, strict: bool) -> None:
        base = default_decisions_by_name()[d.name]
        if isinstance(base.choices[0], bool):
            if not isinstance(v, bool):
                raise ValueError(f"field {d.name!r} must be true or false, got {v!r}")
        elif base.numeric:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"field {d.name!r} must be an integer, got {v!r}")
            lo = 0 if d.name in _MIN_ZERO else 1
            if v < lo:
                raise ValueError(f"field {d.name!r} must be >= {lo}, got {v}")
            hi = MAX_VALUE.get(d.name)
            if hi is not None and v > hi:
                raise ValueError(f"field {d.name!r} must be <= {hi}, got {v}")
        elif v not in base.choices:
            raise ValueError(f"field {d.name!r}: unknown value {v!r}; "
                             f"one of {', '.join(map(str, base.choices))}")
        if strict and v not in d.choices:
            raise ValueError(f"field {d.name!r}: {v!r} is not in this space's choices "
                             f"{list(d.choices)}")

    def check(self, arch: ArchConfig, strict: bool = False) -> None:
        """Raise ValueError naming the field and the rule an architecture breaks.

        ``strict`` also requires every value to be one of this space's choices;
        otherwise any value the code can build is accepted (e.g. d_model=512).
        """
        ctx: dict[str, Any] = {}
        for d in self.decisions:
            v = getattr(arch, d.name)
            if not d.applies(ctx):
                if v is not None:
                    raise ValueError(f"field {d.name!r} must be null here: {d.rule}")
                ctx[d.name] = None
                continue
            if v is None:
                raise ValueError(f"field {d.name!r} is required here ({d.help})")
            self._check_value(d, v, strict)
            if not d.allowed(v, ctx):
                raise ValueError(f"field {d.name!r}={v!r} breaks the rule: {d.rule}")
            ctx[d.name] = v
        if isinstance(arch.vocab_size, bool) or not isinstance(arch.vocab_size, int) \
                or not 2 <= arch.vocab_size <= MAX_VOCAB:
            raise ValueError(f"field 'vocab_size' must be an integer from 2 to {MAX_VOCAB}, "
                             f"got {arch.vocab_size!r}")

    def contains(self, arch: ArchConfig) -> bool:
        try:
            self.check(arch, strict=True)
        except ValueError:
            return False
        return True

    # --- counting -------------------------------------------------------------
    def count(self) -> int:
        """Exact number of distinct valid architectures: paths through the decision
        graph, counted by dynamic programming. The state after step i keeps only
        the fields that decisions from i on still read, so paths with the same
        future merge."""

        @cache
        def paths(i: int, state: tuple[tuple[str, Any], ...]) -> int:
            if i == len(self.decisions):
                return 1
            ctx = dict(state)
            d = self.decisions[i]
            keep = set(self._live[i + 1]) if i + 1 < len(self.decisions) else set()
            opts: tuple[Any, ...] = d.options(ctx) if d.applies(ctx) else (None,)
            total = 0
            for v in opts:
                nxt = {**ctx, d.name: v}
                total += paths(i + 1, tuple(sorted((k, nxt[k]) for k in keep if k in nxt)))
            return total

        return paths(0, ())

    def enumerate(self) -> Iterator[dict[str, Any]]:
        """Every valid architecture as a dict (brute force; small spaces only)."""

        def walk(i: int, ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(self.decisions):
                yield dict(ctx)
                return
            d = self.decisions[i]
            opts = d.options(ctx) if d.applies(ctx) else (None,)
            for v in opts:
                ctx[d.name] = v
                yield from walk(i + 1, ctx)
            ctx.pop(d.name, None)

        yield from walk(0, {})

    # --- sampling and variation ----------------------------------------------
    def _complete(self, rng: random.Random, prefer: list[dict[str, Any]],
                  force: dict[str, Any] | None = None) -> ArchConfig:
        """Walk the decisions; take a value from ``force``, else from the first
        dict in ``prefer`` whose value is still allowed, else sample one."""
        from hwnas.space.arch import ArchConfig

        ctx: dict[str, Any] = {}
        for d in self.decisions:
            if not d.applies(ctx):
                ctx[d.name] = None
                continue
            opts = d.options(ctx)
            if not opts:
                raise ValueError(f"decision {d.name!r} has no allowed choice "
                                 f"(rule: {d.rule}); widen the space")
            if force and d.name in force and force[d.name] in opts:
                ctx[d.name] = force[d.name]
                continue
            for src in prefer:
                if src.get(d.name) in opts:
                    ctx[d.name] = src[d.name]
                    break
            else:
                ctx[d.name] = rng.choice(opts)
        vocab = prefer[0].get("vocab_size") if prefer else None
        return ArchConfig(**ctx) if vocab is None else ArchConfig(**ctx, vocab_size=vocab)

    def sample(self, rng: random.Random) -> ArchConfig:
        """Sample each applicable decision uniformly among its allowed choices."""
        return self._complete(rng, [])

    def sample_distinct(self, n: int, seed: int) -> list[ArchConfig]:
        """``n`` distinct architectures, deterministic for ``seed``."""
        total = self.count()
        if n > total:
            raise ValueError(f"asked for {n} distinct architectures; the space holds {total}")
        rng = random.Random(seed)
        out: dict[str, ArchConfig] = {}
        tries = 0
        while len(out) < n:
            a = self.sample(rng)
            out.setdefault(a.id, a)
            tries += 1
            if tries > 200 * n + 10_000:   # exact counts make this unreachable; never loop
                raise ValueError(f"found only {len(out)} distinct architectures of the "
                                 f"{n} asked for after {tries} samples")
        return list(out.values())

    def mutate(self, arch: ArchConfig, rng: random.Random, n_changes: int = 1) -> ArchConfig:
        """Change ``n_changes`` applicable decisions to a different allowed value;
        downstream decisions keep their values where still valid."""
        current = arch.to_dict()
        for _ in range(n_changes):
            ctx: dict[str, Any] = {}
            movable = []
            for d in self.decisions:
                if d.applies(ctx) and len(d.options(ctx)) > 1:
                    movable.append((d, dict(ctx)))
                ctx[d.name] = current[d.name]
            if not movable:
                return arch
            d, dctx = rng.choice(movable)
            new = rng.choice([o for o in d.options(dctx) if o != current[d.name]])
            current = self._complete(rng, [current], force={d.name: new}).to_dict()
        return self._complete(rng, [current])

    def crossover(self, a: ArchConfig, b: ArchConfig, rng: random.Random) -> ArchConfig:
        """Uniform crossover along the decision order; a parent's value is taken
        only where it is allowed in the child's context."""
        da, db = a.to_dict(), b.to_dict()
        ctx: dict[str, Any] = {}
        for d in self.decisions:
            first, second = (da, db) if rng.random() < 0.5 else (db, da)
            opts = d.options(ctx)
            if not d.applies(ctx):
                ctx[d.name] = None
            elif first[d.name] in opts:
                ctx[d.name] = first[d.name]
            elif second[d.name] in opts:
                ctx[d.name] = second[d.name]
            else:
                ctx[d.name] = rng.choice(opts)
        return self._complete(rng, [ctx | {"vocab_size": a.vocab_size}])

    def suggest(self, trial: optuna.trial.BaseTrial, vocab_size: int = 64) -> ArchConfig:
        """Define-by-run suggestion: only applicable decisions are suggested. A
        decision whose allowed choices depend on the context gets a parameter
        name qualified by that set, since Optuna's categorical distributions
        must not change their choices under one name."""
        from hwnas.space.arch import ArchConfig

        ctx: dict[str, Any] = {}
        for d in self.decisions:
            if not d.applies(ctx):
                ctx[d.name] = None
                continue
            opts = d.options(ctx)
            name = d.name if opts == d.choices else f"{d.name}[{','.join(map(str, opts))}]"
            ctx[d.name] = trial.suggest_categorical(name, list(opts))
        return ArchConfig(**ctx, vocab_size=vocab_size)

    def params_of(self, arch: ArchConfig) -> dict[str, Any]:
        """The inverse of ``suggest``: the Optuna parameter names and values
        that make ``suggest`` return ``arch`` (a fixed-parameter trial)."""
        ctx: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for d in self.decisions:
            if not d.applies(ctx):
                ctx[d.name] = None
                continue
            opts = d.options(ctx)
            value = getattr(arch, d.name)
            if value not in opts:
                raise ValueError(f"{arch.id}: {d.name} = {value!r} is not one of the space's "
                                 f"choices here ({', '.join(map(str, opts))})")
            name = d.name if opts == d.choices else f"{d.name}[{','.join(map(str, opts))}]"
            params[name] = ctx[d.name] = value
        return params

    # --- features ----------------------------------------------------------------
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for d in self.decisions:
            if d.numeric:
                names += [d.name, f"{d.name}:applies"]
            else:
                names += [f"{d.name}={c}" for c in default_decisions_by_name()[d.name].choices]
        return names

    def encode(self, arch: ArchConfig) -> list[float]:
        """Feature vector: numeric decisions as value plus an 'applies' flag,
        categorical ones one-hot over every category the code knows (so
        vectors from different spaces line up)."""
        return self.encode_many([arch])[0].tolist()

    def encode_many(self, archs: Sequence[ArchConfig], cols: dict[str, Any] | None = None
                    ) -> Any:
        """``encode`` of many architectures as one (n, features) float array;
        ``cols`` are their ``columns`` where the caller has them already."""
        import numpy as np

        cols = cols if cols is not None else columns(archs)
        parts = []
        for d in self.decisions:
            v, applies = cols[d.name], cols[d.name + ":set"]
            if d.numeric:
                parts += [v, applies]
                continue
            for c in default_decisions_by_name()[d.name].choices:
                parts.append(applies & (v == (float(c) if isinstance(c, bool) else c)))
        return np.column_stack(parts).astype(np.float64) if parts else \
            np.zeros((len(archs), 0))

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": d.name, "choices": list(d.choices), "help": d.help,
                 "rule": d.rule or None} for d in self.decisions]


@lru_cache(maxsize=1)
def default_decisions_by_name() -> dict[str, Decision]:
    return {d.name: d for d in default_decisions()}


@lru_cache(maxsize=1)
def default_space() -> SearchSpace:
    return SearchSpace()


_STRINGS = ("frontend", "subsampling", "encoder", "decoder", "attention")


def columns(archs: Sequence[ArchConfig]) -> dict[str, Any]:
    """Field -> NumPy array over architectures (every ArchConfig field);
    ``None`` becomes 0 (or "") and ``FIELD:set`` says where the field applies."""
    from dataclasses import fields
    from operator import attrgetter

    import numpy as np

    from hwnas.space.arch import ArchConfig

    names = [f.name for f in fields(ArchConfig)]
    # one C call per architecture, then NumPy's own loops over object arrays
    table = np.array(list(map(attrgetter(*names), archs)), dtype=object).reshape(
        len(archs), len(names))
    cols: dict[str, Any] = {}
    for j, f in enumerate(names):
        col = table[:, j]
        is_set = col != None  # noqa: E711 -- element-wise on an object array
        cols[f] = np.where(is_set, col, "" if f in _STRINGS else 0)
        if f not in _STRINGS:
            cols[f] = cols[f].astype(np.float64)
        cols[f + ":set"] = is_set.astype(bool)
    return cols
