"""A continuous relaxation of a supernet's choices, for differentiable search
(DARTS).

Around a base architecture, each relaxed decision gets architecture weights
alpha over the choices allowed in the base's context, and the network computes
the mixture that softmax(alpha) describes, in one forward pass of the largest
choices:

- ``num_layers``: the encoder runs to the deepest choice, and its output is the
  mixture of the outputs after each choice's depth (attention stacks and
  ContextNet blocks);
- ``ffn_ratio``: each feed-forward's hidden units are scaled by the mixture of
  the choices' masks (a ratio-r FFN is the largest one with the units beyond
  r x d_model off);
- ``conv_kernel``: each convolution's kernel is the mixture of the inherited
  kernels, each zero-padded to the largest (centred, or on the old side when
  causal), once-for-all transforms included.

When alpha is one-hot, the mixture is exactly the subnet of that choice, so the
derived architecture is what was optimised. The other decisions (width,
heads, attention variant, stems, decoder, streaming) cannot be mixed exactly:
a LayerNorm over 144 channels is not one over 256 with some set to zero, and
variants differ in masks and caches. They stay at the base's values, and the
strategy varies the base instead. LSTM depth is one fused ``nn.LSTM``, so
it is not relaxed either.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.asr.supernet.elastic import ElasticSupernet
from hwnas.nn.common import FeedForward

RELAXED = ("num_layers", "ffn_ratio", "conv_kernel")


def _layers(model: nn.Module) -> nn.ModuleList | None:
    """The encoder's sequence of layers whose depth can be mixed."""
    enc = model.encoder
    for path in ("layers", "stack.layers", "blocks"):
        m: Any = enc
        for part in path.split("."):
            m = getattr(m, part, None)
        if isinstance(m, nn.ModuleList):
            return m
    return None


class Relaxation(nn.Module):
    """Architecture weights around ``base`` and the mixed forward they define."""

    def __init__(self, net: ElasticSupernet, base: ArchConfig) -> None:
        super().__init__()
        self.net, self.base = net, base.replace(vocab_size=net.vocab_size)
        ctx: dict[str, Any] = {}
        self.options: dict[str, tuple[Any, ...]] = {}
        for d in net.space.decisions:   # the choices allowed in the base's context
            if d.applies(ctx) and d.name in RELAXED and len(d.options(ctx)) > 1:
                self.options[d.name] = d.options(ctx)
            ctx[d.name] = getattr(self.base, d.name)
        if "num_layers" in self.options and base.encoder in ("lstm", "blstm", "cnn_lstm"):
            del self.options["num_layers"]
        self.alpha = nn.ParameterDict({k: nn.Parameter(torch.zeros(len(v), device=net.device))
                                       for k, v in self.options.items()})
        self.top = net.space.nearest({**self.base.to_dict(),
                                      **{k: max(v) for k, v in self.options.items()}})

    def probs(self) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(a, dim=0) for k, a in self.alpha.items()}

    def derive(self) -> ArchConfig:
        """The base with each relaxed decision at its most probable choice."""
        pick = {k: self.options[k][int(a.argmax())] for k, a in self.alpha.items()}
        return self.net.space.nearest({**self.base.to_dict(), **pick})

    def entropy(self) -> float:
        """Mean entropy of the decisions, each divided by its maximum (0: decided)."""
        if not self.alpha:
            return 0.0
        with torch.no_grad():
            hs = [float(-(p * p.clamp(min=1e-12).log()).sum() / math.log(len(p)))
                  for p in self.probs().values()]
        return sum(hs) / len(hs)

    def _kernels(self, weights: dict[str, torch.Tensor], p: torch.Tensor) -> None:
        top = self.top.conv_kernel
        each = [self.net.weights(self.net.space.nearest({**self.top.to_dict(), "conv_kernel": k}))
                for k in self.options["conv_kernel"]]
        for name, _, rule, _ in self.net.plan(self.top):
            kernel = [r for r in rule if isinstance(r, tuple) and r[0] == "kernel"]
            if not kernel or weights[name].shape[-1] != top:
                continue   # not a searched kernel (a transformer's position conv)
            causal, mixed = kernel[0][1], None
            for prob, k, w in zip(p, self.options["conv_kernel"], each):
                pad = (top - k, 0) if causal else ((top - k) // 2, (top - k) // 2)
                term = nn.functional.pad(w[name], pad) * prob
                mixed = term if mixed is None else mixed + term
            weights[name] = mixed

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        model = self.net.model_of(self.top)
        weights = self.net.weights(self.top)
        p = self.probs()
        if "conv_kernel" in p:
            self._kernels(weights, p["conv_kernel"])
        hooks = []
        if "ffn_ratio" in p:
            d = self.top.d_model
            hidden = torch.arange(d * max(self.options["ffn_ratio"]), device=feats.device)
            mask = sum(pk * (hidden < r * d).float()
                       for pk, r in zip(p["ffn_ratio"], self.options["ffn_ratio"]))
            for m in model.encoder.modules():   # the decoder's FFN ratio is not searched
                if isinstance(m, FeedForward):
                    hooks.append(m.net[2].register_forward_hook(
                        lambda mod, args, out: out * mask))
        layers = _layers(model)
        if "num_layers" in p and layers is not None:
            outs: list[torch.Tensor] = []
            depths = self.options["num_layers"]
            for i, layer in enumerate(layers):
                def keep(mod: Any, args: Any, out: torch.Tensor, i: int = i) -> Any:
                    outs.append(out)
                    if i == len(layers) - 1:
                        return sum(pk * outs[k - 1] for pk, k in zip(p["num_layers"], depths))
                    return None
                hooks.append(layer.register_forward_hook(keep))
        try:
            with torch.nn.utils.stateless._reparametrize_module(model, weights):
                return model(feats, lengths, targets)
        finally:
            for h in hooks:
                h.remove()

    def expected(self, cost: dict[str, dict[Any, float]], at: float) -> torch.Tensor:
        """Expected cost under softmax(alpha), from ``cost[decision][choice]``:
        the cost of the derived architecture with that one decision changed
        (``at``: the derived architecture's own) -- per-choice marginal costs."""
        total = torch.tensor(float(at), device=self.net.device)
        for k, pk in self.probs().items():
            total = total + sum(pk[i] * (cost[k][c] - at) for i, c in enumerate(self.options[k]))
        return total


def differentiable_search(net: ElasticSupernet, base: ArchConfig, splits_of: Any, tok: Any,
                          cost: Any, limit: float, steps: int = 20, latency_weight: float = 1.0,
                          seed: int = 0, batch_frames: int = 2000, beta: float = 0.5,
                          min_entropy: float = 0.15, device: str | None = None
                          ) -> tuple[ArchConfig, dict[str, Any]]:
    """First-order DARTS around ``base``: alternately a weight step on a
    training batch and an architecture step on a dev batch, the latter on the
    dev loss plus ``latency_weight`` x expected cost / ``limit`` (``cost(arch)``
    is the target's predicted speed objective, so the gradient knows the
    device) plus beta-decay regularisation (the mean log-sum-exp of alpha,
    whose gradient is softmax(alpha): it holds back the choice that dominates,
    the known collapse). Stops early once the decisions are made (mean
    normalised entropy below ``min_entropy``). Works on a copy of ``net``, on
    ``device`` (as --train-device); returns the derived architecture and the
    run's record."""
    import copy

    import numpy as np

    from hwnas.asr.train import collate, length_batches, task_loss
    from hwnas.nn.fit import to_device, train_device

    on = train_device(device)
    net = copy.deepcopy(net).to(on)
    rel = Relaxation(net, base)
    if not rel.alpha:
        return rel.base, {"steps": 0, "probs": {}, "note": "nothing to relax"}
    sp = splits_of(base.frontend, base.n_filters)
    norm = sp.train.stats()
    with torch.random.fork_rng(devices=[on] if on.type == "cuda" else []):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        w_opt = torch.optim.AdamW(net.parameters(), lr=5e-4, weight_decay=1e-2)
        a_opt = torch.optim.Adam(rel.alpha.parameters(), lr=0.1)
        train_b = length_batches(sp.train.lengths(), batch_frames, rng)
        dev_b = length_batches(sp.dev.lengths(), batch_frames, rng)
        arch, step = rel.top, 0

        def loss_on(fs: Any, idx: Any) -> torch.Tensor:
            x, xl, y, yl = to_device(collate(fs, idx, tok, norm), on)
            return task_loss(arch, rel(x, xl, y if arch.decoder != "ctc" else None), y, yl)

        for step in range(1, steps + 1):
            w_opt.zero_grad(set_to_none=True)
            loss_on(sp.train, train_b[step % len(train_b)]).backward()
            w_opt.step()
            derived = rel.derive()
            at = cost(derived)
            marginal = {k: {c: cost(net.space.nearest({**derived.to_dict(), k: c}))
                            for c in opts} for k, opts in rel.options.items()}
            reg = torch.stack([torch.logsumexp(a, 0) for a in rel.alpha.values()]).mean()
            a_loss = (loss_on(sp.dev, dev_b[step % len(dev_b)])
                      + latency_weight * rel.expected(marginal, at) / limit + beta * reg)
            a_opt.zero_grad(set_to_none=True)
            w_opt.zero_grad(set_to_none=True)
            a_loss.backward()
            a_opt.step()
            if rel.entropy() < min_entropy:
                break
    probs = {k: [round(float(x), 3) for x in p.detach()] for k, p in rel.probs().items()}
    return rel.derive(), {"steps": step, "probs": probs, "entropy": round(rel.entropy(), 3),
                          "latency_weight": latency_weight}
