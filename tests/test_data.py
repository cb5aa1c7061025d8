"""Built-in corpus, corpus loaders, tokenizer."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from hwnas.data import corpus
from hwnas.data.loaders import (
    CorpusError,
    load_audio,
    load_builtin,
    load_commonvoice,
    load_kaldi,
    load_librispeech,
)
from hwnas.data.synth import SAMPLE_RATE, SynthError, Voice, synthesize
from hwnas.data.tokens import CharTokenizer, normalise
from tests.helpers import tone, user_corpora

sf = pytest.importorskip("soundfile")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- synthesis --------------------------------------------------------------------------
def test_synthesis_is_reproducible_and_voices_differ():
    v = Voice("en-us", "m3", 150, 40)
    a, b = synthesize("seven green trees", v), synthesize("seven green trees", v)
    assert a.dtype == np.float32 and 0.3 * SAMPLE_RATE < len(a) < 5 * SAMPLE_RATE
    assert np.array_equal(a, b)
    c = synthesize("seven green trees", Voice("en-us", "f2", 150, 40))
    assert len(c) != len(a) or not np.array_equal(a, c)
    for lang in ("es", "de", "ru", "el", "hi"):
        assert len(synthesize(corpus.words(lang)[0], Voice(lang))) > 1000


def test_six_languages_three_scripts_each_word_survives_normalisation():
    """Every built-in word is one token sequence of its own script after
    normalisation (a Devanagari vowel sign is a mark, not a word break)."""
    import unicodedata

    assert set(corpus.ACCENTS) == {"en", "es", "de", "ru", "el", "hi"}
    scripts = {}
    for lang in corpus.ACCENTS:
        ws = corpus.words(lang)
        assert len(ws) >= 150
        assert all(normalise(w) == unicodedata.normalize("NFC", w.lower()) and " " not in
                   normalise(w) for w in ws), lang
        scripts[lang] = {unicodedata.name(c).split()[0] for w in ws for c in w
                         if unicodedata.category(c).startswith("L")}
    assert scripts["ru"] == {"CYRILLIC"} and scripts["el"] == {"GREEK"}
    assert scripts["hi"] == {"DEVANAGARI"} and scripts["de"] == {"LATIN"}


def test_a_missing_voice_is_one_clear_error():
    with pytest.raises(SynthError, match="no voice 'xx-nowhere'"):
        synthesize("hello", Voice("xx-nowhere"))


# --- corpus -----------------------------------------------------------------------------
def test_plans_are_deterministic_and_test_sentences_are_unseen():
    langs = list(corpus.ACCENTS)
    plan = corpus.plan_corpus(langs, "tiny", 3)
    again = corpus.plan_corpus(langs, "tiny", 3)
    assert plan == again
    assert corpus.plan_corpus(["en"], "tiny", 4)[("en", "train")] != plan[("en", "train")]
    for lang in langs:
        train = {u.text for u in plan[(lang, "train")]}
        for split in ("dev", "test-clean", "test-noisy"):
            assert not train & {u.text for u in plan[(lang, split)]}
        assert all(u.snr_db is None for u in plan[(lang, "test-clean")])
        assert all(0 <= u.snr_db <= 10 for u in plan[(lang, "test-noisy")])
        snrs = [u.snr_db for u in plan[(lang, "train")]]
        assert any(s is None for s in snrs) and any(s is not None and s >= 10 for s in snrs)
        assert len({u.voice for u in plan[(lang, "train")]}) == len(corpus.ACCENTS[lang])
    with pytest.raises(ValueError, match="no built-in language 'fr'"):
        corpus.plan_corpus(["fr"], "tiny", 0)


def test_build_is_byte_identical_across_workers_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setitem(corpus.SIZES, "tiny", (6, 2, 2))
    a = corpus.build(tmp_path / "a", ["en", "de"], "tiny", 7, workers=1)
    time.sleep(1.1)  # eSpeak seeds its random generator from the clock's seconds
    b = corpus.build(tmp_path / "b", ["en", "de"], "tiny", 7, workers=2)
    da = _digest(a)
    assert da == _digest(b) and len([k for k in da if k.endswith(".wav")]) == 2 * 12
    # interrupted build: some audio missing -> rebuilt identically
    for p in list((b / "en" / "train").glob("*.wav"))[:3]:
        p.unlink()
    shutil.rmtree(b / "de" / "dev")
    corpus.build(tmp_path / "b", ["en", "de"], "tiny", 7, workers=2)
    assert _digest(b) == da
    ds = load_builtin(a, "en", "test-noisy")
    assert len(ds) == 2 and ds.items[0].text
    x = load_audio(ds.items[0])
    assert x.dtype == np.float32 and np.abs(x).max() <= 1.0


def test_data_build_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(corpus.SIZES, "tiny", (3, 1, 1))
    assert main(["data", "build", "--langs", "es", "--size", "tiny", "--workspace",
                 str(tmp_path), "--json", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert '"es/test-clean": 1' in out
    assert main(["data", "show", "--workspace", str(tmp_path)]) == 0
    assert "languages es" in capsys.readouterr().out
    assert main(["data", "build", "--langs", "fr", "--workspace", str(tmp_path)]) == 1
    assert "no built-in language 'fr'" in capsys.readouterr().err


# --- loaders on fixtures written in each layout -----------------------------------------
def test_librispeech_layout(tmp_path):
    ch = tmp_path / "dev-clean" / "84" / "121123"
    ch.mkdir(parents=True)
    sf.write(ch / "84-121123-0000.flac", tone(), SAMPLE_RATE)
    sf.write(ch / "84-121123-0002.flac", tone(), SAMPLE_RATE)  # no transcript line
    (ch / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n"
                                            "84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n")
    ds = load_librispeech(tmp_path / "dev-clean")
    assert [i.id for i in ds.items] == ["84-121123-0000"]
    reasons = sorted(r for _, r in ds.problems)
    assert reasons == ["audio file missing", "no transcript line for this file"]
    assert len(load_audio(ds.items[0])) == SAMPLE_RATE // 2
    with pytest.raises(CorpusError, match="84-121123-0001.flac: audio file missing"):
        load_librispeech(tmp_path / "dev-clean", strict=True)
    with pytest.raises(CorpusError, match="not found"):
        load_librispeech(tmp_path / "nope")


def test_commonvoice_layout_with_mp3_at_48k(tmp_path):
    (tmp_path / "clips").mkdir()
    sf.write(tmp_path / "clips" / "common_voice_es_1.mp3", tone(1.0, 48000), 48000,
             format="MP3")
    (tmp_path / "test.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\n"
        "c1\tcommon_voice_es_1.mp3\t¿Dónde está la estación?\t2\n"
        "c2\tcommon_voice_es_2.mp3\tOtra frase.\t1\n"
        "c3\tcommon_voice_es_3.mp3\t\t0\n", encoding="utf-8")
    ds = load_commonvoice(tmp_path, "test")
    assert [i.text for i in ds.items] == ["¿Dónde está la estación?"]
    assert len(ds.problems) == 2
    x = load_audio(ds.items[0])
    assert abs(len(x) - SAMPLE_RATE) < 2000  # resampled 48 kHz -> 16 kHz (mp3 padding)
    (tmp_path / "bad.tsv").write_text("path\ttext\n")
    with pytest.raises(CorpusError, match="missing column"):
        load_commonvoice(tmp_path, "bad")


def test_kaldi_layout_with_segments(tmp_path):
    sf.write(tmp_path / "rec1.wav", tone(2.0), SAMPLE_RATE, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text("rec1 rec1.wav\nrec2 sox rec2.sph -t wav - |\n")
    (tmp_path / "segments").write_text("u1 rec1 0.0 0.5\nu2 rec1 1.0 2.0\nu3 rec2 0 1\n"
                                       "u4 rec1 0 1\n")
    (tmp_path / "text").write_text("u1 hello there\nu2 general kenobi\nu3 from a pipe\n")
    ds = load_kaldi(tmp_path)
    assert [i.id for i in ds.items] == ["u1", "u2"]
    assert len(load_audio(ds.items[0])) == SAMPLE_RATE // 2
    assert len(load_audio(ds.items[1])) == SAMPLE_RATE
    reasons = " | ".join(r for _, r in ds.problems)
    assert "pipe commands are not run" in reasons and "no transcript for u4" in reasons
    # no segments: utterance = recording
    (tmp_path / "segments").unlink()
    (tmp_path / "text").write_text("rec1 whole file\n")
    ds = load_kaldi(tmp_path)
    assert [i.id for i in ds.items] == ["rec1"] and len(load_audio(ds.items[0])) == 32000


def test_unreadable_audio_names_the_file(tmp_path):
    bad = tmp_path / "x.flac"
    bad.write_bytes(b"not audio at all")
    from hwnas.data.loaders import Item

    with pytest.raises(CorpusError, match="x.flac: cannot read audio"):
        load_audio(Item("x", str(bad), "text"))


# --- tokens -----------------------------------------------------------------------------
def test_character_tokens_round_trip_for_every_language():
    tok = CharTokenizer.for_languages(["en", "es", "de"])
    assert tok.vocab_size <= 64
    for text in ("the red cat", "mañana el niño", "größer straße", "it's"):
        assert tok.decode(tok.encode(text)) == normalise(text)
    assert normalise("  ¿Dónde   ESTÁ?! ") == "dónde está"
    assert tok.encode("a b")[1] == 1  # the space
    assert CharTokenizer.from_json(tok.to_json()).symbols == tok.symbols
    assert tok.unknown("привет") == set("привет")
    every = CharTokenizer.for_languages(list(corpus.ACCENTS))
    for text in ("Красный дом", "μεγάλο σπίτι", "बड़ा घर", "नमस्ते दुनिया।"):
        assert every.unknown(text) == set() or text.startswith("नमस्ते")
        assert every.decode(every.encode(text)) == "".join(
            c for c in normalise(text) if c == " " or c in every.symbols)
    assert normalise("बड़ा घर।") == "बड़ा घर"


# --- training on the user's own corpora -------------------------------------------------
def test_train_onuser_corpora(tmp_path, capsys):
    import json

    c = user_corpora(tmp_path / "data")
    base = ["train", "--preset", "conformer_xs", "--steps", "2", "--workspace",
            str(tmp_path / "ws"), "--train", c["train"], "--dev", c["dev"]]
    assert main(base + ["--test", c["test"], "--test", c["dev"], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 2 and set(out["tests"]) == {"cv", c["dev"]}
    assert out["tests"]["cv"]["n"] == 1 and "wer_lexicon_beam" in out["tests"]["cv"]
    (path, reason), = out["problems"]["train"]
    assert path.endswith("19-198-0007.flac") and "cannot read audio" in reason
    assert out["corpus"]["train"] == c["train"] and Path(out["out"]).name.count("-") == 2
    tok = json.loads((Path(out["out"]) / "tokenizer.json").read_text())
    assert set(tok["symbols"][2:]) == set("abcdefghilmnorstuvy")  # the training transcripts'
    # the saved run scored again, on a test set and with a word list
    lex = tmp_path / "words.txt"
    lex.write_text("the red cat a blue dog\n")
    assert main(["score", out["out"], "--test", c["test"], "--lexicon", str(lex), "--json",
                 "--workspace", str(tmp_path / "ws")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["tests"]["cv"] == out["tests"]["cv"] | {
        k: v for k, v in scored["tests"]["cv"].items() if k.startswith("wer_lexicon")}
    assert "wer_lexicon_beam" in scored["tests"]["cv"]
    assert main(["score", out["out"], "--test", c["dev"]]) == 0
    assert "CER" in capsys.readouterr().out
    assert main(["score", out["out"], "--json", "--workspace", str(tmp_path / "ws")]) == 0
    assert json.loads(capsys.readouterr().out)["tests"] == out["tests"]  # its own test sets
    for argv, needle in ((["score", str(tmp_path)], "not a complete training run"),
                         (["score", str(tmp_path), "--test", c["dev"]],
                          "not a complete training run")):
        assert main(argv) == 1
        assert needle in capsys.readouterr().err
    # one clear line, nothing trained: --strict, a dev without --train, a bad spec, a clash
    for argv, needle in ((base + ["--strict"], "19-198-0007.flac: cannot read audio"),
                         (base[:7] + ["--dev", c["dev"]], "go with --train"),
                         (base[:9], "--train needs --dev"),
                         (base + ["--test", "librispeech"], "give LAYOUT:PATH"),
                         (base + ["--test", "dev=" + c["dev"]], "must be distinct"),
                         (base + ["--test", "commonvoice:" + str(tmp_path)], ".tsv file")):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        errors = [x for x in err.splitlines() if x.startswith("hwnas: error:")]
        assert len(errors) == 1 and needle in errors[0], err


def test_cached_features_are_memory_mapped_and_equal(tmp_path):
    """The cache holds the frames as a raw file read through a memory map (a corpus
    larger than memory trains from the page cache); a cache cut short is redone."""
    from hwnas.training.features import compute

    c = user_corpora(tmp_path / "data")
    ds = load_kaldi(Path(c["dev"].split(":", 1)[1]))
    direct = compute(ds, "logmel", 40)
    cached = compute(ds, "logmel", 40, tmp_path / "cache")
    again = compute(ds, "logmel", 40, tmp_path / "cache")
    assert isinstance(again.frames, np.memmap) and not isinstance(direct.frames, np.memmap)
    assert np.array_equal(direct.frames, cached.frames) and np.array_equal(
        direct.frames, again.frames)
    assert list(again.offsets) == list(direct.offsets) and again.texts == direct.texts
    m, sd = direct.stats()
    x = direct.frames.astype(np.float64)
    assert np.allclose(m, x.mean(0), atol=1e-5) and np.allclose(sd, x.std(0) + 1e-5, atol=1e-4)
    meta = next((tmp_path / "cache").glob("*.npz"))
    meta.unlink()  # as if killed between the frames and the index: computed again
    assert np.array_equal(compute(ds, "logmel", 40, tmp_path / "cache").frames, direct.frames)
    assert not list((tmp_path / "cache").glob(".*tmp*"))
    # one flipped bit of raw float16 (a NaN to train on): the index's checksum
    # refuses it, the damaged pair is set aside and computed again
    raw = next((tmp_path / "cache").glob("*.f16"))
    b = bytearray(raw.read_bytes())
    b[len(b) // 2] ^= 0x7C
    raw.write_bytes(bytes(b))
    redone = compute(ds, "logmel", 40, tmp_path / "cache")
    assert np.array_equal(redone.frames, direct.frames)
    assert len(list((tmp_path / "cache" / "set-aside").glob("*.f16"))) == 1


def test_character_set_per_language_or_shared_is_recorded(tmp_path):
    from hwnas.training.prepare import BuiltinCorpus, corpus_from_description

    own = BuiltinCorpus(tmp_path, ["en"], "tiny", 0)
    shared = BuiltinCorpus(tmp_path, ["en"], "tiny", 0, charset="all")
    assert "ж" not in own.tokenizer.symbols and "ж" in shared.tokenizer.symbols
    assert "न" in shared.tokenizer.symbols and "λ" in shared.tokenizer.symbols
    assert "charset" not in own.description and shared.description["charset"] == "all"
    again = corpus_from_description(shared.description, tmp_path)
    assert again.tokenizer.symbols == shared.tokenizer.symbols
    with pytest.raises(ValueError, match="character set"):
        BuiltinCorpus(tmp_path, ["en"], "tiny", 0, charset="latin")


BUILD = """
import sys
from hwnas.data import corpus
corpus.SIZES["tiny"] = ({n}, 2, 2)
corpus.build(sys.argv[1], ["en"], "tiny", 3, workers=2)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_two_commands_build_one_corpus_once_and_killed_workers_die(tmp_path):
    """Two builds started together on a fresh workspace: one builds, the other
    waits and says so, both succeed. A build killed while its workers run
    leaves no worker behind."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD.format(n=12), str(tmp_path / "ws")],
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum("waiting for another command that is building" in e for e in errs) <= 1
    assert len(list((tmp_path / "ws" / "data").glob("*/en/train/*.wav"))) == 12

    p = subprocess.Popen([sys.executable, "-c", BUILD.format(n=400), str(tmp_path / "k")],
                         env=env)
    workers: list[int] = []
    for _ in range(300):
        workers = _children(p.pid)
        if len(workers) >= 2:
            break
        time.sleep(0.1)
    assert workers, "the build never started its workers"
    p.send_signal(signal.SIGKILL)
    p.wait()
    for _ in range(100):
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"workers {workers} outlived their killed parent")


def test_a_lock_is_waited_for_across_threads_and_reentrant_within_one(tmp_path, caplog):
    import threading

    from hwnas.paths import held

    lock, order = tmp_path / ".x.lock", []
    with held(lock, "x"):
        with held(lock, "x"):   # nested in one thread: no wait on itself
            order.append("nested")
        t = threading.Thread(target=lambda: (held(lock, "x").__enter__(), order.append("other")))
        t.start()
        time.sleep(0.3)
        order.append("first done")
    t.join(5)
    assert order == ["nested", "first done", "other"]
    assert "waiting for another command that is building x" in caplog.text


PROFILE = """
import sys
from cli.main import main
sys.exit(main(["profile", "--device", "cpu", "--n", "4", "--workspace", sys.argv[1]]))
"""


@pytest.mark.slow
def test_two_profiles_of_one_device_started_together_measure_each_architecture_once(tmp_path):
    """Shared state beyond the corpus: a profile has one writer at a time; the
    second command waits, says so, then finds nothing left to measure."""
    import os
    import subprocess
    import sys

    from hwnas.profiling.store import ProfileStore
    from tests.test_search import _fast_cpu

    _fast_cpu(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", PROFILE, str(tmp_path)],
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum("waiting for another command that is building the profile cpu" in e
               for e in errs) == 1, errs
    store = ProfileStore(tmp_path / "profiles" / "cpu", "cpu")
    assert len(store) == 4 and len(store.keys()) == 4
