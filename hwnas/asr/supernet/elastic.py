"""An elastic supernet: one store of weights for an encoder family, from which
every architecture of that family in the space takes its own (weight sharing
in the manner of once-for-all and BigNAS).

The supernet defines no second model. A subnet is the model ``build(arch)``
gives, run with weights cut from the store (``weights(arch)``: differentiable
slices, so training a subnet trains the store), or extracted as a stand-alone
copy (``subnet(arch)``). How a subnet's parameter maps into the store is
decided by the module it belongs to:

- width (``d_model``, ``decoder_dim``, feed-forward ratio, heads): the first
  rows and columns; fused projections (attention's q/k/v, the GLU, the
  decoder's k/v, LSTM gates, a bidirectional layer's two directions) slice
  each block separately, so a query row stays a query row;
- depth: layer i of every subnet is layer i of the store (the first k);
- convolution kernel: the centre k taps of a symmetric kernel, the newest k
  of a causal one, each smaller size then passed through its own learned
  k x k transform (once-for-all's kernel transformation, identity at first).

Where sharing would not mean anything, a choice has its own weights:
- stems (front-end, look-ahead, subsampling) per (frontend, n_filters,
  subsampling): channel i of a 40- and of an 80-filter bank, or of MFCCs and
  log-mels, are different quantities;
- causal and symmetric convolution kernels: tap i is a different frame;
- each decoder type (the CTC head is shared by CTC, LAS and transformer);
- attention variants share the projections; relpos adds its bias table.
Streaming needs no weights of its own: chunk size, left context and
look-ahead only change masks and caches (see :mod:`hwnas.asr.supernet.sandwich`).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from hwnas.asr import ArchConfig
from hwnas.asr.models.decoders.las import LASDecoder
from hwnas.asr.models.decoders.transformer import _Attention as DecoderAttention
from hwnas.asr.models.encoders.conformer import ConvModule
from hwnas.asr.models.model import SpeechModel, build
from hwnas.nn.attention import SelfAttention
from hwnas.nn.common import TimeConv
from hwnas.space import SearchSpace

STEMS = ("frontend", "lookahead", "subsampling")
#: fields a subnet shrinks or grows; every other decision picks a variant
SIZES = ("num_layers", "d_model", "heads", "ffn_ratio", "conv_kernel", "decoder_layers",
         "decoder_dim")

Rule = Any   # "p" (prefix) | ("blocks", n) | ("parts", sub sizes, max sizes) | ("kernel", causal)


def _rules(model: SpeechModel, top: dict[str, int]) -> dict[str, tuple[Rule, ...]]:
    """Parameter name -> per-axis rule, where it is not "first n" on every axis."""
    arch = model.arch
    out: dict[str, tuple[Rule, ...]] = {}
    for mname, m in model.named_modules():
        pre = f"{mname}." if mname else ""
        if isinstance(m, TimeConv):
            out[pre + "conv.weight"] = ("p", "p", ("kernel", m.causal))
        elif isinstance(m, SelfAttention):
            out[pre + "qkv.weight"], out[pre + "qkv.bias"] = (("blocks", 3), "p"), (("blocks", 3),)
        elif isinstance(m, ConvModule):
            out[pre + "pw1.weight"], out[pre + "pw1.bias"] = (("blocks", 2), "p"), (("blocks", 2),)
        elif isinstance(m, DecoderAttention):
            out[pre + "kv.weight"], out[pre + "kv.bias"] = (("blocks", 2), "p"), (("blocks", 2),)
        elif isinstance(m, LASDecoder):
            out[pre + "out.weight"] = ("p", ("parts", (m.rnn.hidden_size, arch.d_model),
                                             (top["decoder_dim"], top["d_model"])))
        elif isinstance(m, nn.LSTM):
            for name, _ in m.named_parameters(recurse=False):
                layer = int(name.split("_l")[1].split("_")[0])
                if name.startswith("weight_ih") and m.bidirectional and layer > 0:
                    out[pre + name] = (("blocks", 4), ("blocks", 2))
                elif name.startswith("weight"):
                    out[pre + name] = (("blocks", 4), "p")
                else:
                    out[pre + name] = (("blocks", 4),)
    return out


def _key(name: str, arch: ArchConfig, rule: tuple[Rule, ...]) -> str:
    """Where parameter ``name`` of ``arch`` lives in the store (no dots: a
    module attribute name)."""
    scope = ""
    if name.split(".")[0] in STEMS:
        scope = f"stem-{arch.frontend}-{arch.n_filters}-{arch.subsampling}/"
    elif name.startswith("decoder."):
        scope = f"{arch.decoder}/"
    kernel = [r for r in rule if isinstance(r, tuple) and r[0] == "kernel"]
    if kernel:
        scope += "causal/" if kernel[0][1] else "symmetric/"
    return (scope + name).replace(".", ":")


def _indices(rule: Rule, big: int, small: int, device: torch.device) -> torch.Tensor | None:
    """Positions along one axis of the store that an axis of ``small`` takes
    (None: the first ``small``), on the store's ``device``."""
    if rule == "p":
        return None
    if rule[0] == "blocks":
        n = rule[1]
        return torch.cat([b * (big // n) + torch.arange(small // n, device=device)
                          for b in range(n)])
    subs, bigs = rule[1], rule[2]
    starts = [sum(bigs[:i]) for i in range(len(bigs))]
    return torch.cat([s + torch.arange(n, device=device) for s, n in zip(starts, subs)])


class ElasticSupernet(nn.Module):
    """The weights of every architecture of ``family`` in ``space``.

    ``weights(arch)`` gives a subnet's parameters as differentiable slices of
    the store; ``forward(arch, ...)`` runs the subnet with them (what training
    does); ``subnet(arch)`` returns a stand-alone ``SpeechModel`` holding a copy.
    """

    def __init__(self, space: SearchSpace, family: str, vocab_size: int, seed: int = 0,
                 materialize: bool = True) -> None:
        super().__init__()
        families = space.choices("encoder")
        if family not in families:
            raise ValueError(f"no encoder family {family!r} in the space; "
                             f"one of {', '.join(families)}")
        self.space = space.with_choices({"encoder": [family]})
        self.family, self.vocab_size = family, vocab_size
        numeric = {d.name: d.choices for d in self.space.decisions if d.numeric}
        self.top = {k: max(v) for k, v in numeric.items()}
        self.bottom = {k: min(v) for k, v in numeric.items()}
        self.kernels = tuple(sorted(numeric.get("conv_kernel", ())))
        self.store = nn.ParameterDict()
        self.transforms = nn.ParameterDict()   # "<store key>@<k>" -> (k, k)
        self._init_store(seed, materialize)
        self._plans: OrderedDict[str, list] = OrderedDict()
        self._models: OrderedDict[str, SpeechModel] = OrderedDict()
        self._models_on = self.device

    @property
    def device(self) -> torch.device:
        """Where the store lives (``net.to(device)`` moves it; the subnets'
        modules and weights follow)."""
        return next(iter(self.store.values())).device

    # --- the store ----------------------------------------------------------------
    def _covering(self) -> list[ArchConfig]:
        """Architectures whose parameters, together, reach every store entry at
        its largest shape: the largest choices, once per variant."""
        choices = self.space.choices
        base = {**self.top, "encoder": self.family, "vocab_size": self.vocab_size,
                "streaming": True}
        variants: list[dict[str, Any]] = [{}]
        variants += [{"frontend": f, "n_filters": n, "subsampling": s}
                     for f in choices("frontend") for n in choices("n_filters")
                     for s in choices("subsampling")]
        variants += [{"decoder": d} for d in choices("decoder")]
        variants += [{"attention": a} for a in choices("attention")]
        variants += [{"streaming": s, "causal_conv": c} for s in (False, True)
                     for c in (False, True)]
        seen: dict[str, ArchConfig] = {}
        for v in variants:
            a = self.space.nearest({**base, **v})
            seen.setdefault(a.id, a)
        return list(seen.values())

    def _init_store(self, seed: int, materialize: bool) -> None:
        shapes: dict[str, tuple[int, ...]] = {}
        source: dict[str, ArchConfig] = {}
        kernels: set[str] = set()
        for arch in self._covering():
            with torch.device("meta"):
                model = build(arch)
            rules = _rules(model, self.top)
            for name, p in model.named_parameters():
                rule = rules.get(name, ())
                key = _key(name, arch, rule)
                if rule and isinstance(rule[-1], tuple) and rule[-1][0] == "kernel":
                    kernels.add(key)
                old = shapes.get(key, tuple(p.shape))
                if len(old) != p.dim():
                    raise AssertionError(f"{key}: rank differs between variants")
                shapes[key] = tuple(max(a, b) for a, b in zip(old, p.shape))
                if tuple(p.shape) == shapes[key]:
                    source[key] = arch
        missing = sorted(set(shapes) - set(source))
        if missing:
            raise AssertionError(f"no variant reaches the largest shape of {missing[0]}")
        for key in sorted(shapes):
            self.store[key] = nn.Parameter(torch.empty(shapes[key]))
        for key in sorted(kernels):
            for k in self.kernels:
                if k < shapes[key][-1]:
                    self.transforms[f"{key}@{k}"] = nn.Parameter(torch.eye(k))
        if not materialize:   # weights about to be loaded
            return
        # each entry starts as its module's own initialisation at full size
        with torch.no_grad():
            for arch in {a.id: a for a in source.values()}.values():
                torch.manual_seed(seed)
                model = build(arch)
                rules = _rules(model, self.top)
                for name, p in model.named_parameters():
                    key = _key(name, arch, rules.get(name, ()))
                    if source[key].id == arch.id:
                        self.store[key].copy_(p)

    # --- a subnet's weights -------------------------------------------------------
    def _check(self, arch: ArchConfig) -> ArchConfig:
        if arch.encoder != self.family:
            raise ValueError(f"a {arch.encoder} architecture is not in the {self.family} "
                             "supernet")
        if not self.space.contains(arch):
            raise ValueError(f"architecture {arch.id} is outside this supernet's space")
        return arch.replace(vocab_size=self.vocab_size)

    def model_of(self, arch: ArchConfig) -> SpeechModel:
        """The module that runs ``arch`` (its own weights unused: see ``forward``)."""
        arch = self._check(arch)
        if self._models_on != self.device:   # moved: its buffers (masks, filters) must follow
            self._models.clear()
            self._models_on = self.device
        m = self._models.get(arch.id)
        if m is None:
            m = self._models[arch.id] = build(arch).to(self.device)
            m.requires_grad_(False)
            while len(self._models) > 16:
                self._models.popitem(last=False)
        self._models.move_to_end(arch.id)
        return m

    def plan(self, arch: ArchConfig) -> list[tuple[str, str, tuple[Rule, ...], tuple]]:
        """Per parameter of ``arch``: (name, store key, per-axis rule, shape)."""
        plan = self._plans.get(arch.id)
        if plan is None:
            model = self.model_of(arch)
            rules = _rules(model, self.top)
            plan = []
            for name, p in model.named_parameters():
                rule = rules.get(name, ("p",) * p.dim())
                key = _key(name, model.arch, rules.get(name, ()))
                if key not in self.store:
                    raise ValueError(f"{name} of {arch.id} has no weights in the supernet")
                plan.append((name, key, rule, tuple(p.shape)))
            self._plans[arch.id] = plan
            while len(self._plans) > 4096:
                self._plans.popitem(last=False)
        return plan

    def _kernel(self, t: torch.Tensor, key: str, k: int, causal: bool) -> torch.Tensor:
        """The last axis of ``t`` cut down to ``k`` taps, one transformed size at a time."""
        while t.shape[-1] > k:
            size = max([s for s in self.kernels if k <= s < t.shape[-1]], default=k)
            start = t.shape[-1] - size if causal else (t.shape[-1] - size) // 2
            t = t.narrow(-1, start, size)
            tf = self.transforms[f"{key}@{size}"] if f"{key}@{size}" in self.transforms else None
            if tf is not None:
                t = t @ tf
        return t

    def weights(self, arch: ArchConfig) -> dict[str, torch.Tensor]:
        """``arch``'s parameters by name, as (differentiable) slices of the store."""
        out = {}
        for name, key, rule, shape in self.plan(arch):
            t = self.store[key]
            for axis, (r, n) in enumerate(zip(rule, shape)):
                if t.shape[axis] == n:
                    continue
                if t.shape[axis] < n:
                    raise ValueError(f"{name} of {arch.id} is larger than the supernet's")
                if isinstance(r, tuple) and r[0] == "kernel":
                    t = self._kernel(t, key, n, r[1])
                    continue
                idx = _indices(r, t.shape[axis], n, t.device)
                t = t.narrow(axis, 0, n) if idx is None else t.index_select(axis, idx)
            out[name] = t
        return out

    def forward(self, arch: ArchConfig, *args: Any, **kwargs: Any) -> Any:
        """``SpeechModel.forward`` of ``arch`` with its weights from the store."""
        return functional_call(self.model_of(arch), self.weights(arch), args, kwargs)

    @torch.no_grad()
    def subnet(self, arch: ArchConfig) -> SpeechModel:
        """A stand-alone model of ``arch`` holding a copy of its inherited
        weights, on the store's device."""
        arch = self._check(arch)
        model = build(arch).to(self.device)
        model.load_state_dict({k: v.detach().clone() for k, v in self.weights(arch).items()})
        return model

    # --- the sandwich ---------------------------------------------------------------
    def extreme(self, arch: ArchConfig, largest: bool) -> ArchConfig:
        """``arch`` with every size at its largest (or smallest) allowed value;
        stems, variants, decoder type and streaming settings kept."""
        ends = self.top if largest else self.bottom
        values = {**arch.to_dict(), **{k: v for k, v in ends.items() if k in SIZES}}
        return self.space.nearest(values)

    def sample(self, rng: random.Random) -> ArchConfig:
        return self.space.sample(rng).replace(vocab_size=self.vocab_size)
