"""SearchSpace: owns the choices; counts, samples, mutates, crosses over,
suggests through Optuna and encodes architectures as feature vectors.

It knows no task: a task (``hwnas.asr``, ``hwnas.tts``) gives it its
decisions, the frozen dataclass an architecture is (one field per decision,
plus fixed fields such as a vocabulary size that no decision chooses) and
the numeric bounds any value must keep."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.space.decisions import Decision

if TYPE_CHECKING:
    import optuna

Arch = Any   # a task's frozen architecture dataclass


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
    """An ordered decision graph (see :mod:`hwnas.space.decisions`) whose
    paths are architectures of type ``arch_type``.

    ``bounds`` maps a numeric field to its (lowest, highest) value: anything
    beyond is refused before a model is allocated (a numeric decision without
    bounds must be >= 1). ``domain`` holds the decisions as the code knows
    them, before a user narrows the choices: a value in the domain but not in
    this space's choices is buildable, and encodings line up across spaces.
    """

    def __init__(self, decisions: Sequence[Decision], arch_type: type,
                 bounds: dict[str, tuple[int, int | None]] | None = None,
                 domain: Sequence[Decision] | None = None) -> None:
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self.arch_type = arch_type
        self.bounds = dict(bounds or {})
        self.domain = {d.name: d for d in (domain or self.decisions)}
        self._by_name = {d.name: d for d in self.decisions}
        from dataclasses import fields

        #: fields no decision chooses (carried from parent to child unchanged)
        self.fixed = tuple(f.name for f in fields(arch_type) if f.name not in self.domain)
        #: values of fixed fields every architecture made here gets (``with_fixed``)
        self.defaults: dict[str, Any] = {}
        # Fields read by decision i or any later one: the DP state at step i.
        live: list[tuple[str, ...]] = []
        acc: set[str] = set()
        for d in reversed(self.decisions):
            acc |= set(d.reads)
            live.append(tuple(sorted(acc)))
        self._live = list(reversed(live))

    def choices(self, name: str) -> tuple[Any, ...]:
        """The choices of decision ``name``."""
        if name not in self._by_name:
            raise ValueError(f"unknown decision {name!r}; known: {', '.join(self._by_name)}")
        return self._by_name[name].choices

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
                                    if d.name in overrides else d for d in self.decisions]),
                           self.arch_type, self.bounds, list(self.domain.values())
                           ).with_fixed(**self.defaults)

    def with_fixed(self, **values: Any) -> SearchSpace:
        """A copy whose architectures all get these values of fields no decision
        chooses (the phoneme inventory a TTS search's data has), whichever way
        they are made: sampled, varied or suggested."""
        bad = sorted(set(values) - set(self.fixed))
        if bad:
            raise ValueError(f"{', '.join(bad)}: not a field outside the decisions "
                             f"({', '.join(self.fixed)})")
        out = SearchSpace(self.decisions, self.arch_type, self.bounds,
                          list(self.domain.values()))
        out.defaults = {**self.defaults, **values}
        return out

    def with_toml(self, path: str | Path) -> SearchSpace:
        """This space with choices overridden from a TOML file: a ``[choices]``
        table, e.g. ``encoder = ["conformer", "lstm"]``."""
        from hwnas.paths import read_text

        p = Path(path)
        try:
            data = tomllib.loads(read_text(p))
        except FileNotFoundError:
            raise ValueError(f"space file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"space file {p} cannot be read: "
                             f"{getattr(e, 'strerror', None) or e}") from None
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
            return self.with_choices(choices)
        except ValueError as e:
            raise ValueError(f"space file {p}: {e}") from None

    # --- membership and validation ------------------------------------------
    def _check_value(self, d: Decision, v: Any, strict: bool) -> None:
        base = self.domain[d.name]
        if isinstance(base.choices[0], bool):
            if not isinstance(v, bool):
                raise ValueError(f"field {d.name!r} must be true or false, got {v!r}")
        elif base.numeric:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"field {d.name!r} must be an integer, got {v!r}")
            lo, hi = self.bounds.get(d.name, (1, None))
            if v < lo:
                raise ValueError(f"field {d.name!r} must be >= {lo}, got {v}")
            if hi is not None and v > hi:
                raise ValueError(f"field {d.name!r} must be <= {hi}, got {v}")
        elif v not in base.choices:
            raise ValueError(f"field {d.name!r}: unknown value {v!r}; "
                             f"one of {', '.join(map(str, base.choices))}")
        if strict and v not in d.choices:
            raise ValueError(f"field {d.name!r}: {v!r} is not in this space's choices "
                             f"{list(d.choices)}")

    def check(self, arch: Arch, strict: bool = False) -> None:
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
        for name in self.fixed:
            if name not in self.bounds:
                continue
            v, (lo, hi) = getattr(arch, name), self.bounds[name]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= (hi or v):
                raise ValueError(f"field {name!r} must be an integer from {lo} to {hi}, "
                                 f"got {v!r}")

    def contains(self, arch: Arch) -> bool:
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

    # --- walking the graph ---------------------------------------------------------
    def _walk(self, choose: Callable[[Decision, tuple[Any, ...], dict[str, Any]], Any]
              ) -> dict[str, Any]:
        """Take the decisions in order: one that does not apply is ``None``, any
        other ``choose(decision, its allowed choices, the values so far)``."""
        ctx: dict[str, Any] = {}
        for d in self.decisions:
            ctx[d.name] = choose(d, d.options(ctx), ctx) if d.applies(ctx) else None
        return ctx

    @staticmethod
    def _param(d: Decision, opts: tuple[Any, ...]) -> str:
        """The Optuna parameter name of ``d`` where ``opts`` are allowed: a
        categorical distribution must not change its choices under one name."""
        return d.name if opts == d.choices else f"{d.name}[{','.join(map(str, opts))}]"

    # --- sampling and variation ----------------------------------------------
    def _complete(self, rng: random.Random, prefer: list[dict[str, Any]],
                  force: dict[str, Any] | None = None) -> Arch:
        """Walk the decisions; take a value from ``force``, else from the first
        dict in ``prefer`` whose value is still allowed, else sample one; fixed
        fields come from the first of ``prefer``."""
        def choose(d: Decision, opts: tuple[Any, ...], _: dict[str, Any]) -> Any:
            if not opts:
                raise ValueError(f"decision {d.name!r} has no allowed choice "
                                 f"(rule: {d.rule}); widen the space")
            if force and d.name in force and force[d.name] in opts:
                return force[d.name]
            for src in prefer:
                if src.get(d.name) in opts:
                    return src[d.name]
            return rng.choice(opts)

        ctx = self._walk(choose)
        kept = {f: prefer[0][f] for f in self.fixed if prefer and prefer[0].get(f) is not None}
        return self.arch_type(**ctx, **{**kept, **self.defaults})

    def sample(self, rng: random.Random) -> Arch:
        """Sample each applicable decision uniformly among its allowed choices."""
        return self._complete(rng, [])

    def sample_distinct(self, n: int, seed: int) -> list[Arch]:
        """``n`` distinct architectures, deterministic for ``seed``."""
        total = self.count()
        if n > total:
            raise ValueError(f"asked for {n} distinct architectures; the space holds {total}")
        rng = random.Random(seed)
        out: dict[str, Arch] = {}
        tries = 0
        while len(out) < n:
            a = self.sample(rng)
            out.setdefault(a.id, a)
            tries += 1
            if tries > 200 * n + 10_000:   # exact counts make this unreachable; never loop
                raise ValueError(f"found only {len(out)} distinct architectures of the "
                                 f"{n} asked for after {tries} samples")
        return list(out.values())

    def mutate(self, arch: Arch, rng: random.Random, n_changes: int = 1) -> Arch:
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

    def nearest(self, values: dict[str, Any]) -> Arch:
        """The architecture of this space closest to ``values`` (field -> value,
        numbers may be fractional): each decision takes the given value where
        allowed, a numeric one else the allowed choice nearest in ratio, any
        other the first allowed choice. Fixed fields come from ``values``."""
        import math

        def choose(d: Decision, opts: tuple[Any, ...], _: dict[str, Any]) -> Any:
            want = values.get(d.name)
            if want in opts:
                return opts[opts.index(want)]   # the choice itself (40, not 40.0)
            if d.numeric and isinstance(want, (int, float)) and want > 0:
                return min(opts, key=lambda o: abs(math.log(o / want)) if o > 0 else math.inf)
            return opts[0]

        ctx = self._walk(choose)
        return self.arch_type(**ctx, **{**{f: values[f] for f in self.fixed
                                           if values.get(f) is not None}, **self.defaults})

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
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
        return self._complete(rng, [ctx | {f: getattr(a, f) for f in self.fixed}])

    def suggest(self, trial: optuna.trial.BaseTrial, **fixed: Any) -> Arch:
        """Define-by-run suggestion: only applicable decisions are suggested. A
        decision whose allowed choices depend on the context gets a parameter
        name qualified by that set, since Optuna's categorical distributions
        must not change their choices under one name. ``fixed`` sets fields no
        decision chooses (a vocabulary size)."""
        ctx = self._walk(lambda d, opts, _: trial.suggest_categorical(self._param(d, opts),
                                                                      list(opts)))
        return self.arch_type(**ctx, **{**self.defaults, **fixed})

    def params_of(self, arch: Arch) -> dict[str, Any]:
        """The inverse of ``suggest``: the Optuna parameter names and values
        that make ``suggest`` return ``arch`` (a fixed-parameter trial)."""
        params: dict[str, Any] = {}

        def choose(d: Decision, opts: tuple[Any, ...], _: dict[str, Any]) -> Any:
            value = getattr(arch, d.name)
            if value not in opts:
                raise ValueError(f"{arch.id}: {d.name} = {value!r} is not one of the space's "
                                 f"choices here ({', '.join(map(str, opts))})")
            params[self._param(d, opts)] = value
            return value

        self._walk(choose)
        return params

    # --- features ----------------------------------------------------------------
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for d in self.decisions:
            if d.numeric:
                names += [d.name, f"{d.name}:applies"]
            else:
                names += [f"{d.name}={c}" for c in self.domain[d.name].choices]
        return names

    def encode(self, arch: Arch) -> list[float]:
        """Feature vector: numeric decisions as value plus an 'applies' flag,
        categorical ones one-hot over every category the code knows (so
        vectors from different spaces line up)."""
        return self.encode_many([arch])[0].tolist()

    def encode_many(self, archs: Sequence[Arch], cols: dict[str, Any] | None = None
                    ) -> Any:
        """``encode`` of many architectures as one (n, features) float array;
        ``cols`` are their ``columns`` where the caller has them already."""
        import numpy as np

        cols = cols if cols is not None else self.columns(archs)
        parts = []
        for d in self.decisions:
            v, applies = cols[d.name], cols[d.name + ":set"]
            if d.numeric:
                parts += [v, applies]
                continue
            for c in self.domain[d.name].choices:
                parts.append(applies & (v == (float(c) if isinstance(c, bool) else c)))
        return np.column_stack(parts).astype(np.float64) if parts else \
            np.zeros((len(archs), 0))

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": d.name, "choices": list(d.choices), "help": d.help,
                 "rule": d.rule or None} for d in self.decisions]

    def columns(self, archs: Sequence[Arch]) -> dict[str, Any]:
        """Field -> NumPy array over architectures (every field of the
        architecture type); ``None`` becomes 0 (or "" for fields whose choices
        are strings) and ``FIELD:set`` says where the field applies."""
        from dataclasses import fields
        from operator import attrgetter

        import numpy as np

        strings = {d.name for d in self.domain.values()
                   if not d.numeric and not isinstance(d.choices[0], bool)}
        if archs:   # a fixed field holding text (a TTS architecture's task tag)
            strings |= {f for f in self.fixed if isinstance(getattr(archs[0], f), str)}
        names = [f.name for f in fields(self.arch_type)]
        # one C call per architecture, then NumPy's own loops over object arrays
        table = np.array(list(map(attrgetter(*names), archs)), dtype=object).reshape(
            len(archs), len(names))
        cols: dict[str, Any] = {}
        for j, f in enumerate(names):
            col = table[:, j]
            is_set = col != None  # noqa: E711 -- element-wise on an object array
            cols[f] = np.where(is_set, col, "" if f in strings else 0)
            if f not in strings:
                cols[f] = cols[f].astype(np.float64)
            cols[f + ":set"] = is_set.astype(bool)
        return cols
