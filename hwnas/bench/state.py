"""Which outputs of a streaming model are its next call's state inputs.

The rule (documented in docs/bench.md): an output feeds an input back when
both hold

* the names: the output's name is the input's name with one of these
  changes -- a prefix ``new_``, ``next_`` or ``out_``; a suffix ``_out``,
  ``_new``, ``_next``, ``N`` or ``n``; ``in`` -> ``out`` as a part of the
  name between ``_``, ``.`` or ``/`` (``state_in`` -> ``state_out``,
  ``in_cache`` -> ``out_cache``); a trailing ``0`` -> ``n`` or ``N``
  (``h0`` -> ``hn``), and ``input`` -> ``output`` likewise;
* the declared shapes and dtypes agree (a dimension left open on either
  side agrees with anything).

Names are compared case-sensitively. Each input takes at most one output
(the first rule that matches, in the order above), and each output feeds at
most one input. ``--state IN=OUT`` names a pair the rule does not find;
``--no-state`` turns the rule off. A pair whose shapes or dtypes differ is
refused in one line, never fed.
"""

from __future__ import annotations

import re

from hwnas.bench.model import Dim, ModelError, ModelFile, Tensor

_SEP = re.compile(r"([_./])")


def candidates(name: str) -> list[str]:
    """Output names that would be ``name``'s next state, in the rule's order."""
    out = [f"new_{name}", f"next_{name}", f"out_{name}",
           f"{name}_out", f"{name}_new", f"{name}_next", f"{name}N", f"{name}n"]
    parts = _SEP.split(name)
    for word, repl in (("in", "out"), ("input", "output")):
        for i, p in enumerate(parts):
            if p == word:
                out.append("".join(parts[:i] + [repl] + parts[i + 1:]))
    if name.endswith("0"):
        out += [name[:-1] + "n", name[:-1] + "N"]
    return list(dict.fromkeys(c for c in out if c != name))


def _dims_agree(a: Dim, b: Dim) -> bool:
    fixed_a = isinstance(a, int) and a >= 0
    fixed_b = isinstance(b, int) and b >= 0
    return a == b if fixed_a and fixed_b else True


def compatible(i: Tensor, o: Tensor) -> str | None:
    """None when ``o`` can feed ``i``, else why not (one phrase)."""
    if i.dtype != o.dtype:
        return f"dtypes differ ({i.dtype} in, {o.dtype} out)"
    if i.shape is None or o.shape is None:
        return None
    if len(i.shape) != len(o.shape) or not all(_dims_agree(a, b)
                                                for a, b in zip(i.shape, o.shape)):
        return f"shapes differ ({i.shape_text()} in, {o.shape_text()} out)"
    return None


def find_pairs(model: ModelFile, given: dict[str, str] | None = None,
               auto: bool = True) -> dict[str, str]:
    """input name -> the output that feeds it on the next call. ``given``
    (``--state IN=OUT``) are checked and kept; the rule adds the rest."""
    pairs: dict[str, str] = {}
    for i_name, o_name in (given or {}).items():
        i, o = model.input(i_name), model.output(o_name)
        why = compatible(i, o)
        if why:
            raise ModelError(f"state pair {i_name}={o_name}: {why}")
        pairs[i_name] = o_name
    if not auto:
        return pairs
    outputs = {o.name: o for o in model.outputs}
    taken = set(pairs.values())
    for i in model.inputs:
        if i.name in pairs:
            continue
        for c in candidates(i.name):
            if c in outputs and c not in taken and compatible(i, outputs[c]) is None:
                pairs[i.name] = c
                taken.add(c)
                break
    return pairs


def parse_state(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        i, sep, o = item.partition("=")
        if not sep or not i or not o:
            raise ModelError(f"--state takes INPUT=OUTPUT, got {item!r}")
        out[i.strip()] = o.strip()
    return out
