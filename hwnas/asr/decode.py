"""Decoding: CTC greedy and prefix beam search, RNN-T greedy, attention
greedy. Two ways to make word error rates mean something on a closed
vocabulary: lexicon-constrained CTC beam search (every hypothesis is a
sequence of lexicon words, spelled through a prefix trie) for models with a
CTC head, and snapping (each hypothesised word becomes its nearest lexicon
word by character edit distance) for any decoder."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from hwnas.asr.losses import BLANK


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """(B, T, V) -> token ids per utterance (repeats merged, blanks removed)."""
    best = logits.argmax(-1).cpu().numpy()
    out = []
    for b, n in enumerate(lengths.tolist()):
        seq, prev = [], BLANK
        for s in best[b, :n]:
            if s != prev and s != BLANK:
                seq.append(int(s))
            prev = s
        out.append(seq)
    return out


def _lse(*xs: float) -> float:
    m = max(xs)
    return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in xs))


def _add(beams: dict[tuple[int, ...], list[float]], prefix: tuple[int, ...], pb: float,
         pnb: float) -> None:
    cur = beams.setdefault(prefix, [-math.inf, -math.inf])
    cur[0], cur[1] = _lse(cur[0], pb), _lse(cur[1], pnb)


def ctc_beam(log_probs: np.ndarray, beam: int = 8) -> list[int]:
    """CTC prefix beam search on one utterance's (T, V) log-probabilities:
    each prefix keeps the probability of ending in a blank and in a symbol."""
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # (p_b, p_nb)
    V = log_probs.shape[1]
    for t in range(log_probs.shape[0]):
        lp = log_probs[t]
        top = np.argsort(lp)[::-1][: min(V, beam + 1)]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            for s in top:
                p = float(lp[s])
                if s == BLANK:
                    _add(nxt, prefix, total + p, -math.inf)
                elif prefix and prefix[-1] == s:
                    _add(nxt, prefix, -math.inf, pnb + p)  # a repeat collapses
                    _add(nxt, prefix + (int(s),), -math.inf, pb + p)  # new after a blank
                else:
                    _add(nxt, prefix + (int(s),), -math.inf, total + p)
        beams = dict(sorted(((k, (v[0], v[1])) for k, v in nxt.items()),
                            key=lambda kv: -_lse(*kv[1]))[:beam])
    return list(max(beams.items(), key=lambda kv: _lse(*kv[1]))[0])


SPACE = 1  # the tokenizer's id for the word separator


class Lexicon:
    """A word list as a prefix trie over token ids (node 0 is the root)."""

    def __init__(self, words: Iterable[str], encode: Any) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.final: list[bool] = [False]
        for w in words:
            for part in w.split():  # normalisation may split a hyphenated word
                node = 0
                for s in encode(part):
                    nxt = self.children[node].get(s)
                    if nxt is None:
                        nxt = len(self.children)
                        self.children[node][s] = nxt
                        self.children.append({})
                        self.final.append(False)
                    node = nxt
                if node:
                    self.final[node] = True
        if len(self.children) == 1:
            raise ValueError("the lexicon has no word the tokenizer can spell")


def ctc_lexicon_beam(log_probs: np.ndarray, lexicon: Lexicon, beam: int = 8,
                     prune: float = 10.0) -> list[int]:
    """CTC prefix beam search whose prefixes are lexicon words separated by
    single spaces; the hypothesis returned ends on a whole word (or is empty). Symbols more
    than ``prune`` nats below a frame's best are not tried."""
    # prefix -> (p_blank, p_symbol); node: the trie node of the prefix's last word
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    node: dict[tuple[int, ...], int] = {(): 0}
    for t in range(log_probs.shape[0]):
        lp = log_probs[t]
        cand = np.nonzero(lp >= lp.max() - prune)[0]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total, at = _lse(pb, pnb), node[prefix]
            last = prefix[-1] if prefix else None
            for s in cand:
                s, p = int(s), float(lp[s])
                if s == BLANK:
                    _add(nxt, prefix, total + p, -math.inf)
                    continue
                if s == last:
                    _add(nxt, prefix, -math.inf, pnb + p)  # a repeat collapses
                if s == SPACE:
                    ok = last is not None and last != SPACE and lexicon.final[at]
                    child = 0
                else:
                    child = lexicon.children[at].get(s, -1)
                    ok = child >= 0
                if ok:
                    ext = prefix + (s,)
                    node[ext] = child
                    _add(nxt, ext, -math.inf, pb + p if s == last else total + p)
        if not nxt:  # nothing in the lexicon fits this frame: keep the beams
            continue
        beams = dict(sorted(((k, (v[0], v[1])) for k, v in nxt.items()),
                            key=lambda kv: -_lse(*kv[1]))[:beam])
    # training targets never end on a space, so neither does a hypothesis
    whole = [(k, v) for k, v in beams.items()
             if not k or (k[-1] != SPACE and lexicon.final[node[k]])]
    return list(max(whole, key=lambda kv: _lse(*kv[1]))[0]) if whole else []


@torch.no_grad()
def rnnt_greedy(model: torch.nn.Module, enc: torch.Tensor, lengths: torch.Tensor,
                max_symbols: int = 5) -> list[list[int]]:
    """Greedy transducer decoding of a batch, frame by frame for all
    utterances at once: each follows the rule it would alone (up to
    ``max_symbols`` per frame; the prediction network advances only where a
    symbol was emitted), so one joint call serves the whole batch instead of
    one per utterance and frame."""
    dec = model.decoder
    B, V = enc.shape[0], dec.vocab
    h = enc.new_zeros(B, dec.layers, dec.dim)
    c = enc.new_zeros(B, dec.layers, dec.dim)
    prev = enc.new_zeros(B, V)
    prev[:, BLANK] = 1.0
    g, h2, c2 = dec.step(prev, h, c)
    e = dec.enc_proj(enc)
    lengths = lengths.to(torch.long)
    out: list[list[int]] = [[] for _ in range(B)]
    for t in range(int(lengths.max()) if B else 0):
        emitting = lengths > t
        for _ in range(max_symbols):
            k = dec.out(torch.tanh(e[:, t] + dec.pred_proj(g))).argmax(-1)
            emitting = emitting & (k != BLANK)
            if not bool(emitting.any()):
                break
            for b in emitting.nonzero()[:, 0].tolist():
                out[b].append(int(k[b]))
            keep = emitting[:, None, None]
            h, c = torch.where(keep, h2, h), torch.where(keep, c2, c)
            g_new, h2_new, c2_new = dec.step(torch.nn.functional.one_hot(k, V).to(enc.dtype),
                                             h, c)
            g = torch.where(emitting[:, None], g_new, g)
            h2, c2 = torch.where(keep, h2_new, h2), torch.where(keep, c2_new, c2)
    return out


@torch.no_grad()
def rnnt_beam(model: torch.nn.Module, enc: torch.Tensor, length: int, beam: int = 4
              ) -> list[int]:
    """Transducer beam search for one utterance (B=1 ``enc``), at most one
    label per frame ("modified" beam search): per frame every hypothesis
    emits blank or one of its top labels; equal label sequences merge. The
    prediction network's state depends only on the labels, so a merged
    hypothesis keeps either path's state."""
    dec = model.decoder
    V = dec.vocab

    def step(tok: int, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        prev = enc.new_zeros(1, V)
        prev[0, tok] = 1.0
        return dec.step(prev, h, c)

    h0 = enc.new_zeros(1, dec.layers, dec.dim)
    hyps: dict[tuple[int, ...], tuple[float, tuple[torch.Tensor, ...]]] = {
        (): (0.0, step(BLANK, h0, h0.clone()))}
    e = dec.enc_proj(enc[0, :length])
    for t in range(e.shape[0]):
        cand: dict[tuple[int, ...], list[Any]] = {}  # seq -> [score, state, new label]
        for seq, (score, st) in hyps.items():
            lp = dec.out(torch.tanh(e[t] + dec.pred_proj(st[0][0]))).log_softmax(-1)
            options = [(None, float(lp[BLANK]))] + [
                (int(k) + 1, float(lp[int(k) + 1]))
                for k in lp[1:].topk(min(beam, V - 1)).indices]
            for k, p in options:
                new = seq if k is None else seq + (k,)
                if new in cand:
                    cand[new][0] = float(np.logaddexp(cand[new][0], score + p))
                    if k is None:  # prefer the path whose state needs no new step
                        cand[new][1:] = [st, None]
                else:
                    cand[new] = [score + p, st, k]
        hyps = {}
        for seq, (score, st, k) in sorted(cand.items(), key=lambda kv: -kv[1][0])[:beam]:
            hyps[seq] = (score, st if k is None else step(k, st[1], st[2]))
    return list(max(hyps.items(), key=lambda kv: kv[1][0])[0])


@torch.no_grad()
def attention_beam(model: torch.nn.Module, enc: torch.Tensor, length: int, beam: int = 4,
                   max_len: int = 200) -> list[int]:
    """Attention-decoder beam search for one utterance; token 0 ends a hypothesis."""
    e = enc[:1, :length]
    live: list[tuple[float, list[int]]] = [(0.0, [0])]
    done: list[tuple[float, list[int]]] = []
    for _ in range(max_len):
        cand = []
        for score, seq in live:
            lp = model.decoder(e, torch.tensor([seq], device=e.device))[0, -1].log_softmax(-1)
            for p, k in zip(*lp.topk(beam)):
                cand.append((score + float(p), seq + [int(k)]))
        cand.sort(key=lambda x: -x[0])
        live = []
        for score, seq in cand[:beam]:
            (done if seq[-1] == 0 else live).append((score, seq))
        if not live or (done and max(d[0] for d in done) > live[0][0]):
            break
    best = max(done or live, key=lambda x: x[0] / max(1, len(x[1]) - 1))
    return [k for k in best[1][1:] if k != 0]


@torch.no_grad()
def attention_greedy(model: torch.nn.Module, enc: torch.Tensor, lengths: torch.Tensor,
                     max_len: int = 200) -> list[list[int]]:
    out = []
    for b in range(enc.shape[0]):
        e = enc[b: b + 1, : int(lengths[b])]
        seq = [0]
        for _ in range(max_len):
            logits = model.decoder(e, torch.tensor([seq], device=e.device))
            k = int(logits[0, -1].argmax())
            if k == 0:
                break
            seq.append(k)
        out.append(seq[1:])
    return out


@lru_cache(maxsize=200_000)
def _edit(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def snap_to_lexicon(text: str, lexicon: Sequence[str]) -> str:
    """Replace each word by its nearest lexicon word (ties: the first listed)."""
    lex = tuple(lexicon)
    words = []
    for w in text.split():
        words.append(min(lex, key=lambda x: (_edit(w, x), abs(len(w) - len(x)))))
    return " ".join(words)
