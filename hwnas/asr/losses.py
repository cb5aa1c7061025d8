"""Losses: CTC (PyTorch's), RNN-T (ours), attention cross-entropy with joint CTC.

No maintained RNN-T loss installs against torch 2.13 here (torchaudio's only
resolvable build is a CUDA one that fails to import), so :func:`rnnt_loss`
is written in PyTorch and checked against a brute-force sum over every
alignment on tiny inputs (tests/test_training.py).
"""

from __future__ import annotations

import torch
from torch import nn

BLANK = 0
CTC_WEIGHT = 0.3  # joint CTC/attention (Watanabe et al., 2017)


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V), targets (B, U) padded; mean over the batch of the
    per-utterance loss divided by its target length."""
    lp = logits.log_softmax(-1).transpose(0, 1)  # (T, B, V)
    return nn.functional.ctc_loss(lp, targets, lengths, target_lengths, blank=BLANK,
                                  reduction="mean", zero_infinity=True)


def rnnt_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
              target_lengths: torch.Tensor) -> torch.Tensor:
    """Transducer loss (Graves, 2012). logits (B, T, U+1, V) from the joint
    network, lengths (B,) encoder frames, targets (B, U) padded.

    Forward variable over the lattice, one time step at a time; within a time
    step the recursion along u,
        a[t, u] = logaddexp(a[t-1, u] + blank[t-1, u], a[t, u-1] + emit[t, u-1]),
    is solved in closed form with a log-cumsum-exp, so only T steps run in
    Python. Returns the mean over the batch of -log P(y|x) / (U + 1)."""
    B, T, U1, _ = logits.shape
    lp = logits.log_softmax(-1)
    blank = lp[..., BLANK]                                              # (B, T, U+1)
    idx = targets[:, None, :, None].expand(B, T, U1 - 1, 1).long()
    emit = lp[:, :, :-1].gather(-1, idx).squeeze(-1)                   # (B, T, U)
    # mask emissions past each target's end so they never contribute
    u_pos = torch.arange(U1 - 1, device=logits.device)
    emit = emit.masked_fill(u_pos[None, None] >= target_lengths[:, None, None], -1e4)
    zero = emit.new_zeros(B, T, 1)
    csum = torch.cat([zero, emit.cumsum(-1)], dim=-1)                   # (B, T, U+1)
    neg_inf = torch.finfo(lp.dtype).min / 4
    alpha_prev = None
    finals = []
    for t in range(T):
        if t == 0:
            b = torch.full((B, U1), neg_inf, device=logits.device, dtype=lp.dtype)
            b[:, 0] = 0.0
        else:
            b = alpha_prev + blank[:, t - 1]
        c = csum[:, t]
        alpha = c + torch.logcumsumexp(b - c, dim=-1)
        finals.append(alpha)
        alpha_prev = alpha
    alphas = torch.stack(finals, dim=1)                                 # (B, T, U+1)
    bi = torch.arange(B, device=logits.device)
    t_last = (lengths - 1).long()
    u_last = target_lengths.long()
    ll = alphas[bi, t_last, u_last] + blank[bi, t_last, u_last]
    return (-ll / (target_lengths.float() + 1)).mean()


def attention_loss(att_logits: torch.Tensor, targets: torch.Tensor,
                   target_lengths: torch.Tensor) -> torch.Tensor:
    """Teacher-forced cross-entropy; the decoder predicts [y1..yU, end=0]."""
    B, U1, V = att_logits.shape
    gold = torch.cat([targets, targets.new_zeros(B, 1)], dim=1)
    pos = torch.arange(U1, device=targets.device)[None]
    gold = gold.scatter(1, target_lengths[:, None].long(), 0)  # end token at U
    mask = pos <= target_lengths[:, None]
    ce = nn.functional.cross_entropy(att_logits.reshape(-1, V), gold.reshape(-1).long(),
                                     reduction="none").reshape(B, U1)
    return (ce * mask).sum() / mask.sum()
