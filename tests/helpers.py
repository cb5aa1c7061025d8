"""What the tests share: small architectures, the short measuring plan, stand-ins
for a trainer and for the Edge TPU compiler, user corpora on disk, and for the
corruption tests what a folder holds and garbage."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.adapters import Plan
from hwnas.asr import ArchConfig
from hwnas.data.synth import SAMPLE_RATE

EDGETPU_FIXTURES = Path(__file__).parent / "fixtures" / "edgetpu"

# mechanics, not noise: a 5-run measurement on a shared CI core may be noisy
FAST = Plan(warmup_runs=2, min_runs=5, min_seconds=0.05, retries=0, max_ci=float("inf"),
            max_drift=1.0)


def small(encoder: str, decoder: str, attention: str | None, frontend: str,
          streaming: bool = False, **kw) -> ArchConfig:
    att = encoder in ("conformer", "transformer")
    conv = encoder in ("conformer", "cnn_lstm", "contextnet")
    d = dict(frontend=frontend, n_filters=40, subsampling="conv2d4", encoder=encoder,
             streaming=streaming, num_layers=2, d_model=96, decoder=decoder,
             attention=attention if att else None, heads=4 if att else None,
             local_window=8 if attention == "local" and att else None,
             ffn_ratio=2 if att else None, conv_kernel=7 if conv else None,
             causal_conv=False if conv and not streaming else None,
             decoder_layers=None if decoder == "ctc" else 1,
             decoder_dim=None if decoder == "ctc" else 128, vocab_size=32)
    if streaming:
        d.update(chunk_ms=160, lookahead=0,
                 left_chunks=1 if att and attention != "linear" else None)
    d.update(kw)
    return ArchConfig(**d)


def fake_trainer(calls: list | None = None):
    """A stand-in trainer: CER (always within 0.1-0.85) falls with width, depth
    and budget towards a floor set by the architecture; deterministic and instant. ``calls`` gets
    (arch_id, budget) per training."""
    def run(arch, budget, state):
        if calls is not None:
            calls.append((arch.id, budget))
        floor = 0.1 + 24.0 / (arch.d_model * arch.num_layers)
        return floor + 5.0 / (10.0 + budget), {"spent": budget}

    return run


def fake_compiler(bin_dir: Path, log: Path, rc: int = 0) -> None:
    """Stands in for the real compiler (not installable here): replays its
    captured output and writes the compiled file where the real one would."""
    script = bin_dir / "edgetpu_compiler"
    script.write_text(f"""#!/bin/sh
out=.; model=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift 2;; -s) shift;; *) model="$1"; shift;; esac
done
cat '{log}'
[ {rc} -eq 0 ] && cp "$model" "$out/$(basename "$model" .tflite)_edgetpu.tflite"
exit {rc}
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def tone(seconds: float = 0.5, sr: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def user_corpora(root: Path) -> dict[str, str]:
    """LibriSpeech train (one unreadable file), Kaldi dev, Common Voice test."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    texts = ["go do you hear", "but in less than five minutes", "the red cat", "a blue dog"]
    ch = root / "ls" / "19" / "198"
    ch.mkdir(parents=True)
    lines = []
    for i in range(8):
        uid = f"19-198-{i:04d}"
        sf.write(ch / f"{uid}.flac", tone(0.6) + 0.01 * rng.standard_normal(9600)
                 .astype(np.float32), SAMPLE_RATE)
        lines.append(f"{uid} {texts[i % 4].upper()}")
    (ch / "19-198-0007.flac").write_bytes(b"broken")  # transcribed, unreadable
    (ch / "19-198.trans.txt").write_text("\n".join(lines) + "\n")
    kd = root / "kaldi_dev"
    kd.mkdir()
    sf.write(kd / "r1.wav", tone(1.2), SAMPLE_RATE, subtype="PCM_16")
    (kd / "wav.scp").write_text("r1 r1.wav\n")
    (kd / "segments").write_text("d1 r1 0.0 0.6\nd2 r1 0.6 1.2\n")
    (kd / "text").write_text("d1 the red cat\nd2 a blue dog\n")
    cv = root / "cv"
    (cv / "clips").mkdir(parents=True)
    sf.write(cv / "clips" / "c1.wav", tone(0.6), SAMPLE_RATE)
    (cv / "test.tsv").write_text("client_id\tpath\tsentence\nx\tc1.wav\tThe red cat.\n")
    return {"train": f"librispeech:{root / 'ls'}", "dev": f"kaldi:{kd}",
            "test": f"cv=commonvoice:{cv / 'test.tsv'}"}




def stored(folder: Path) -> dict[str, bytes]:
    """name -> bytes of every file under ``folder`` (set-aside folders included)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in Path(folder).rglob("*") if p.is_file()}


def garbage(path: Path) -> None:
    Path(path).write_bytes(b"\x00\xffnot parquet, json, npz or torch\x13" * 7)


def lost(before: dict[str, bytes], after: dict[str, bytes], rewritten: set[str] = frozenset()
         ) -> list[str]:
    """Files of ``before`` whose bytes are nowhere in ``after`` (moved is fine;
    ``rewritten`` names files the command was meant to write over)."""
    return [name for name, data in before.items() if name not in rewritten
            and not any(v.startswith(data) for v in after.values())]


def android_options(phone: Any, tmp_path: Path, tool: Path | None, **kw) -> dict:
    """Options of an Android device file for the loopback ``phone``."""
    from hwnas.adapters.android import AndroidAdapter

    return AndroidAdapter.validate_options({
        "serial": f"127.0.0.1:{phone.port}", "adb_key": str(tmp_path / "keys" / "adbkey"),
        "benchmark_binary": str(tool) if tool else "", "threads": 1, "connect_timeout_s": 5.0,
        "reconnect_timeout_s": 3.0, **kw})


def google_adb() -> str | None:
    """Google's adb client, required under CI (.ci/run installs Debian's adb)."""
    import os
    import shutil

    path = shutil.which("adb")
    if path is None and os.environ.get("CI"):
        import pytest

        pytest.fail("Google's adb client is required in CI (.ci/run installs Debian's adb)")
    return path


def synthetic_splits(utts: int = 12, seed: int = 0):
    """``splits_of(frontend, n_filters)`` over random features of ``utts`` short
    utterances with short texts (the same texts and lengths for every stem),
    and their tokenizer: training mechanics without synthesising a corpus."""
    from hwnas.data.tokens import CharTokenizer
    from hwnas.nn.frontend import input_dim
    from hwnas.training.features import FeatureSet
    from hwnas.training.prepare import Splits

    rng = np.random.default_rng(seed)
    texts = ["".join(rng.choice(list("abcde "), size=rng.integers(3, 8))).strip() or "a"
             for _ in range(utts)]
    lengths = rng.integers(60, 140, size=utts)
    tok = CharTokenizer.from_texts(texts)
    cache: dict = {}

    def one(name: str, dim: int, k: int) -> FeatureSet:
        r = np.random.default_rng([seed, dim, k])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        frames = r.standard_normal((int(offsets[-1]), dim)).astype(np.float16)
        return FeatureSet(name, [f"u{i}" for i in range(utts)], list(texts), frames, offsets)

    def splits_of(frontend: str, n_filters: int) -> Splits:
        dim = input_dim(frontend, n_filters)
        if dim not in cache:
            cache[dim] = Splits(one("train", dim, 0), one("dev", dim, 1), {}, {})
        return cache[dim]

    return splits_of, tok


def streamed_and_full(model, chunks: int = 5):
    """A streaming model's encoder output on random features, chunk by chunk
    (each chunk checked to have the declared input size) and in one pass."""
    import torch

    arch = model.arch
    feats = torch.randn(1, arch.chunk_frames * arch.subsampling_factor * chunks,
                        model.input_dim)
    with torch.no_grad():
        full, _ = model.encode(feats)
        caches, outs = model.init_caches(1), []
        for chunk in model.split_chunks(feats):
            assert chunk.shape[1] == model.chunk_input_frames
            y, caches = model.encode_chunk(chunk, caches)
            outs.append(y)
    return torch.cat(outs, dim=1), full


class StandInHost:
    """A stand-in host for the spot check (``batch``, ``clock``): a call takes
    ``predictor``'s ratio x ``slowdown(arch)``, with 1% noise per measurement, and
    4 s of (scripted) clock per measurement."""

    def __init__(self, predictor, slowdown):
        self.predictor, self.slowdown = predictor, slowdown
        self.rows, self.now, self.measured = [], 0.0, 0
        self.rng = np.random.default_rng(0)

    def truth(self, archs):
        return self.predictor.predict(archs) * np.array([self.slowdown(a) for a in archs])

    def batch(self, archs, repeats):
        for _ in range(repeats):
            for a, t in zip(archs, self.truth(archs)):
                self.rows.append({"arch_id": a.id, "arch": a.to_dict(), "status": "ok",
                                  "rel_p50": float(t * self.rng.lognormal(0, 0.01))})
                self.now += 4.0
                self.measured += 1
        return list(self.rows)

    def clock(self):
        return self.now
