"""The values a benchmark feeds a model, from what it declares and the flags:

* ``--inputs FILE.npz``: whole inputs, by name;
* ``--value NAME=16000`` (or ``NAME=1,2,3``): constant inputs, in the
  input's declared dtype; a single number fills the input's whole shape;
* ``--shape NAME=1x512``: an input's shape, or ``--shape DIM=512`` for a
  dimension the model names (``time``, ``batch``) in every input that has it.

Then, for what is left: a state input (one fed back) starts at zeros, as a
stream does; a float input (or a quantised one) gets standard normal noise
(seed 0). Anything else -- an integer or boolean input, a dimension still
open -- is refused in one line that names it and the flag that sets it:
nothing is guessed silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.bench.model import ModelError, ModelFile, Tensor

_DIMS = re.compile(r"^\d+([x,]\d+)*$")


@dataclass
class Feeds:
    values: dict[str, np.ndarray]
    #: input name -> where its value came from, as the result states it
    sources: dict[str, str] = field(default_factory=dict)


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ModelError(f"{flag} takes NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _fits(t: Tensor, shape: tuple[int, ...]) -> str | None:
    """None when ``shape`` is one the model allows for ``t``, else why not."""
    if t.shape is None:
        return None
    if len(shape) != len(t.shape):
        return (f"the model declares {len(t.shape)} dimension(s) ({t.shape_text()}), "
                f"not {len(shape)}")
    for i, (want, got) in enumerate(zip(t.shape, shape)):
        if isinstance(want, int) and want >= 0 and want != got:
            return f"dimension {i} is {want} in the model, not {got}"
    return None


def _noise(t: Tensor, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    if t.quant is not None and np.issubdtype(np.dtype(t.dtype), np.integer):
        scale, zero = t.quant
        info = np.iinfo(np.dtype(t.dtype))
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(t.dtype)
    return x.astype(t.dtype)


def resolve(model: ModelFile, *, shapes: list[str] | None = None,
            values: list[str] | None = None, npz: str | Path | None = None,
            states: dict[str, str] | None = None, seed: int = 0) -> Feeds:
    """Every input's value, or ModelError naming what is missing and its flag.
    ``states``: input -> output pairs fed back (those inputs start at zero)."""
    states = states or {}
    given: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    if npz is not None:
        try:
            with np.load(npz, allow_pickle=False) as data:
                given = {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise ModelError(f"--inputs {npz}: not a readable .npz file ({e})") from None
        for name, arr in given.items():
            t = model.input(name)
            why = _fits(t, arr.shape)
            if why:
                raise ModelError(f"--inputs {npz}: input {name!r} has shape "
                                 f"{'x'.join(map(str, arr.shape)) or 'scalar'}, but {why}")
            if t.shape is not None and np.dtype(t.dtype) != arr.dtype:
                if np.dtype(t.dtype).kind != arr.dtype.kind:
                    raise ModelError(f"--inputs {npz}: input {name!r} is {arr.dtype}, the model "
                                     f"takes {t.dtype}")
                given[name] = arr.astype(t.dtype)
            sources[name] = f"--inputs {Path(npz).name}"

    # shapes: per input, or per named dimension
    fixed: dict[str, tuple[int, ...]] = {}
    dims: dict[str, int] = {}
    named = {d for t in model.inputs if t.shape for d in t.shape if isinstance(d, str)}
    for name, text in _pairs(shapes, "--shape").items():
        if not _DIMS.match(text):
            raise ModelError(f"--shape {name}={text}: give the dimensions as 1x512 (integers "
                             "joined by x)")
        shape = tuple(int(x) for x in re.split("[x,]", text))
        if any(n == 0 for n in shape):
            raise ModelError(f"--shape {name}={text}: a dimension of 0 runs nothing")
        if name in {t.name for t in model.inputs}:
            why = _fits(model.input(name), shape)
            if why:
                raise ModelError(f"--shape {name}={text} contradicts the model: {why}")
            fixed[name] = shape
        elif name in named and len(shape) == 1:
            dims[name] = shape[0]
        else:
            raise ModelError(f"--shape {name}: the model has no input or open dimension named "
                             f"{name!r}; inputs: {', '.join(t.name for t in model.inputs)}"
                             + (f"; named dimensions: {', '.join(sorted(named))}" if named else ""))

    def shape_of(t: Tensor) -> tuple[int, ...]:
        if t.name in fixed:
            return fixed[t.name]
        if t.shape is None:
            raise ModelError(f"input {t.name!r} has no declared shape: give --shape "
                             f"{t.name}=1x... or --inputs FILE.npz")
        out = []
        for i, d in enumerate(t.shape):
            if isinstance(d, int) and d >= 0:
                out.append(d)
            elif isinstance(d, str) and d in dims:
                out.append(dims[d])
            else:
                label = f" ({d!r})" if isinstance(d, str) else ""
                hint = f" or --shape {d}=N" if isinstance(d, str) else ""
                raise ModelError(f"input {t.name!r} dimension {i}{label} has no value: give "
                                 f"--shape {t.name}={_example(t, dims)}{hint}")
        return tuple(out)

    for name, text in _pairs(values, "--value").items():
        t = model.input(name)
        try:
            arr = np.array([float(x) for x in text.split(",")])
        except ValueError:
            raise ModelError(f"--value {name}={text}: give a number or numbers joined by commas"
                             ) from None
        if t.dtype == "bool":
            arr = arr != 0
        if len(arr) == 1:
            try:
                shape = shape_of(t)
            except ModelError:
                shape = ()
            arr = np.full(shape, arr[0])
        elif t.shape is not None and _fits(t, arr.shape) is not None:
            arr = arr.reshape(shape_of(t)) if arr.size == np.prod(shape_of(t)) else arr
            why = _fits(t, arr.shape)
            if why:
                raise ModelError(f"--value {name}: {arr.size} numbers do not fit {t.shape_text()}"
                                 f" ({why})")
        given[name] = arr.astype(t.dtype if t.dtype != "bool" else bool)
        sources[name] = "--value"

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for t in model.inputs:
        if t.name in given:
            out[t.name] = given[t.name]
            continue
        shape = shape_of(t)
        if t.name in states:
            out[t.name] = np.zeros(shape, t.dtype)
            sources[t.name] = f"zeros, then fed back from {states[t.name]}"
        elif np.dtype(t.dtype).kind == "f" or t.quant is not None:
            out[t.name] = _noise(t, shape, rng)
            sources[t.name] = f"standard normal noise (seed {seed})"
        else:
            raise ModelError(f"input {t.name!r} ({t.dtype}, {t.shape_text()}) has no value: "
                             f"give --value {t.name}=N or --inputs FILE.npz")
    return Feeds(out, sources)


def _example(t: Tensor, dims: dict[str, int]) -> str:
    assert t.shape is not None
    return "x".join(str(d) if isinstance(d, int) and d >= 0 else str(dims.get(str(d), "N"))
                    for d in t.shape)
