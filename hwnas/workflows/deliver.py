"""After the search: test-set CER of the Pareto set, export of the chosen
architecture in the target's format, and its model card.

Every trained trial leaves its run under ``<study dir>/trials/<n>-<arch id>/``
(weights, tokenizer, feature statistics, result.json -- the layout of
``hwnas train``), written at each rung it reached, so the chosen model is the
one the search trained, not a retrained copy.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwnas.paths import file_sha256
from hwnas.search.storage import run_of

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


def score_tests(rows: list[dict[str, Any]], study_dir: Path, task: Any,
                test_sets: Callable[[str, int], dict[str, tuple[Any, list[str]]]]) -> None:
    """Add ``tests`` ({"en/test-clean": {"cer", "wer", "wer_lexicon", ...}, ...})
    to each row from its saved run, as ``task`` scores a run on
    ``test_sets(frontend, n_filters)`` (name -> (feature set, lexicon))."""
    for r in rows:
        r["tests"] = task.test_scores(run_of(r, study_dir), test_sets)


def lexicon_wer(r: dict[str, Any]) -> str:
    """A test set's word-level score: lexicon-constrained beam where the model
    has a CTC head, else the snapped hypotheses (marked)."""
    if "wer_lexicon_beam" in r:
        return f"{r['wer_lexicon_beam']:.3f}"
    return f"{r['wer_lexicon']:.3f} (snapped)" if "wer_lexicon" in r else ""


def _safe_url(url: str) -> str:
    """A storage URL without its password, for cards and output."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a journal file): nothing secret in it
        return url


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("hwnas", "torch", "onnx", "onnxruntime", "optuna", "xgboost"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def export_selected(row: dict[str, Any], study_dir: Path, fmt: str, out_dir: Path,
                    context: dict[str, Any]) -> dict[str, Any]:
    """Export the selected row's trained model to ``fmt`` under ``out_dir``
    and write its model card (JSON and Markdown) beside it. ``context``:
    study, storage, target, constraints, predictor, corpus, training.
    Returns the card."""
    from hwnas import tasks
    from hwnas.export import export

    run = run_of(row, study_dir)
    from hwnas.state import read_json
    from hwnas.training.runs import RESULT

    result = read_json(run / "result.json", RESULT)
    arch = tasks.arch_from_dict(result["arch"])  # as trained (vocabulary of the tokenizer)
    task = tasks.get(tasks.task_of(arch))
    key = row.get("quality_key", "cer")
    source = file_sha256(run / "weights.pt")
    earlier = _earlier_export(Path(out_dir) / arch.id, fmt, source)
    if earlier is not None:
        return earlier
    art = export(arch, fmt, out_dir, weights=run / "weights.pt")
    folder = Path(art.path).parent
    for name in task.export_files:   # what reading the graph's inputs and outputs needs
        (folder / name).write_bytes((run / name).read_bytes())
    sha = file_sha256(art.path)
    blocks = _where_time_goes(arch, art, run / "weights.pt")
    card = {
        "model": {"arch_id": arch.id, "searched_id": row["arch_id"], "arch": arch.to_dict(),
                  **tasks.row_fields(arch), "task": task.name, "params": row["params"],
                  "size_mb_fp32": row.get("size_mb")},
        "metrics": {f"dev_{key}": row[key], "tests": row.get("tests", {}),
                    **({"dev": row["dev"]} if row.get("dev") else {}),
                    **({"dev_cer_by_lang": row["cer_by_lang"]} if row.get("cer_by_lang")
                       else {}),
                    "latency_ms": row["latency_ms"], "latency_source": row["latency_source"],
                    "predicted_latency_ms": row.get("predicted_ms", row["latency_ms"]),
                    **{k: row[k] for k in ("p90_ms", "rtf", "model_bytes", "delay_ms",
                                           "delay_ci", "delay_p90_ms") if k in row},
                    "delay": task.delay_parts(arch)},
        "training": {"steps": result.get("steps"), "cpu_seconds": result.get("cpu_seconds"),
                     "rungs": row.get("rungs"), "curve": result.get("curve"),
                     **context.get("training", {})},
        "export": {"format": fmt, "file": Path(art.path).name, "sha256": sha,
                   "source_weights_sha256": source,
                   "size_bytes": art.size_bytes, "graph": art.graph, "inputs": art.inputs,
                   "outputs": art.outputs, "parity": art.parity, "notes": art.notes,
                   "files": sorted(p.name for p in folder.iterdir() if p.is_file())},
        "where_time_goes": blocks,
        "provenance": {"study": context.get("study"),
                       "storage": _safe_url(context.get("storage", "")),
                       "trial": row["trial"], "target": context.get("target"),
                       "constraints": context.get("constraints"),
                       "predictor": context.get("predictor"), "corpus": context.get("corpus"),
                       "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                       "versions": _versions()},
    }
    (folder / CARD_JSON).write_text(json.dumps(card, indent=2, sort_keys=True, default=str)
                                    + "\n")
    (folder / CARD_MD).write_text(card_markdown(card))
    return {**card, "folder": str(folder)}


def _earlier_export(folder: Path, fmt: str, source: str) -> dict[str, Any] | None:
    """The card of an export of these very weights in ``fmt`` already in
    ``folder`` (a rerun delivers it again as it is). An export of other
    weights there is set aside, never overwritten, with a note; one of these
    weights in another format gets the new format beside it."""
    import logging

    from hwnas.paths import stamped

    if not folder.exists():
        return None
    try:
        made = json.loads((folder / CARD_JSON).read_text())["export"]
        if made["source_weights_sha256"] == source:
            if made["format"] == fmt and (folder / made["file"]).is_file():
                return {**json.loads((folder / CARD_JSON).read_text()), "folder": str(folder)}
            return None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    dest = stamped(folder.parent / "set-aside", folder.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder.replace(dest)
    logging.getLogger("hwnas").warning(f"an earlier export in {folder} is kept in {dest}")
    return None


def _where_time_goes(arch: Any, art: Any, weights: Path) -> dict[str, Any]:
    """Per-block time of the exported graph on this host (ONNX Runtime's
    profiler; an ONNX copy is made where the target runs another format).
    Never fails the delivery: a graph it cannot profile says why."""
    import tempfile

    from hwnas.bench.run import block_profile
    from hwnas.errors import first_line
    from hwnas.export import export

    try:
        if art.format == "onnx":
            return block_profile(art.path)
        with tempfile.TemporaryDirectory(prefix="hwnas-card-") as tmp:
            onnx_art = export(arch, "onnx", tmp, weights=weights, check=False)
            got = block_profile(onnx_art.path)
            got["source"] += " (the ONNX graph of the same model)"
            return got
    except Exception as e:  # noqa: BLE001 - the card is delivered either way
        return {"source": None, "blocks": [], "note": f"not profiled: {first_line(e, 160)}"}


def _blocks_markdown(w: dict[str, Any] | None) -> list[str]:
    if not w or not w.get("blocks"):
        return []
    from hwnas.bench.ops import BY_ORDER_NOTE

    note = f" {w['by_order_share']:.0%} {BY_ORDER_NOTE}." if w.get("by_order_share") else ""
    return ["", "## Where the time goes (measured per block)", "", f"Source: {w['source']}.{note}",
            "", "| block | ms per call | share |", "|---|---|---|",
            *[f"| {b['block']} | {b['ms_per_run']:.4f} | {b['share']:.1%} |"
              for b in w["blocks"]]]


def card_markdown(card: dict[str, Any]) -> str:
    m, met, tr, ex, pv = (card[k] for k in ("model", "metrics", "training", "export",
                                             "provenance"))
    from hwnas.training.prepare import corpus_text

    a = m["arch"]
    if "dev_cer" not in met:
        return _card_other(card)
    corpus = corpus_text(pv["corpus"]) if pv.get("corpus") else "built-in corpus"
    lines = [f"# Model card: {m['arch_id']} ({m['encoder']} / {m['decoder']})", "",
             f"Found by `hwnas search` (study `{pv['study']}`, trial {pv['trial']}) for target "
             f"`{pv['target']}` under {_constraints_text(pv['constraints'])}.", "",
             "## Architecture", "", "| decision | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in a.items() if v is not None]
    lines += ["", f"Parameters: {m['params']:,}; fp32 weights {m['size_mb_fp32']:.2f} MB; "
                  f"{'streaming (chunk graph)' if m['streaming'] else 'full-utterance graph'}.",
              "", f"## Accuracy ({corpus}; greedy decoding)", "",
              "| set | CER | WER | lexicon WER | utterances |", "|---|---|---|---|---|",
              f"| dev | {met['dev_cer']:.3f} | | | |"]
    lines += [f"| dev {lang} | {c:.3f} | | | |"
              for lang, c in (met.get("dev_cer_by_lang") or {}).items()]
    for name, r in met["tests"].items():
        lines.append(f"| {name} | {r['cer']:.3f} | {r['wer']:.3f} | {lexicon_wer(r)} "
                     f"| {r.get('n', '')} |")
    lines += ["", "Lexicon WER: CTC beam search (width 8) constrained to the corpus's "
                  "word list; for a decoder without a CTC head, each word snapped to the "
                  "nearest listed word."]
    src = met["latency_source"]
    lines += ["", f"## Latency on `{pv['target']}` ({src})", "",
              f"p50 per device-graph call: **{met['latency_ms']:.3f} ms** ({src}"
              + (f"; the predictor said {met['predicted_latency_ms']:.3f} ms" if src == "measured"
                 else f", predictor {pv['predictor']}") + ")."]
    if met.get("p90_ms") is not None:
        rtf = met.get("rtf")
        lines.append(f"p90 {met['p90_ms']:.3f} ms"
                     + (f", real-time factor {rtf:.4f}" if rtf is not None else "") + ".")
    d = met.get("delay")
    if d:
        lines += ["", "Emission delay (what a user waits for a sound at the start of a chunk):",
                  "", "| chunk | look-ahead | STFT window | algorithmic delay | compute p50 | "
                  "emission delay p50 | emission delay p90 |", "|---|---|---|---|---|---|---|",
                  "| " + " | ".join(_delay_cells(d, met)) + " |"]
    lines += ["", "## Training", "",
              f"{tr.get('steps')} steps, {tr.get('cpu_seconds')} CPU s on one thread; rungs: "
              + ", ".join(f"{r['budget_s']:g} -> dev CER {r['cer']:.3f}" for r in tr.get("rungs")
                          or []) + ".",
              f"Corpus: {pv.get('corpus')}.", "",
              "## Export", "",
              f"`{ex['file']}` ({ex['format']}, {ex['size_bytes']:,} bytes, sha256 "
              f"`{ex['sha256'][:16]}...`); {_parity_text(ex['parity'])}.",
              "Inputs: " + ", ".join(f"`{i['name']}` {i['shape']}" for i in ex["inputs"]) + ".",
              f"Feature extraction runs outside the graph: {a['frontend']} with "
              f"{a['n_filters']} filters (10 ms hop), then (x - mean) / std with "
              "`feature_norm.npz`; output ids map to characters through `tokenizer.json` "
              "(CTC blank = 0).",
              *_blocks_markdown(card.get("where_time_goes")),
              "", "## Provenance", "",
              f"Study storage `{pv['storage']}`, {pv['date']}, versions "
              + ", ".join(f"{k} {v}" for k, v in pv["versions"].items()) + ".", ""]
    return "\n".join(lines)


def _card_other(card: dict[str, Any]) -> str:
    """The card of a model whose quality is not a CER (a TTS model): its
    architecture, dev figures, latency, training and export."""
    m, met, tr, ex, pv = (card[k] for k in ("model", "metrics", "training", "export",
                                             "provenance"))
    lines = [f"# Model card: {m['arch_id']} ({m['encoder']} / {m['decoder']})", "",
             f"Found by `hwnas search --task {m['task']}` (study `{pv['study']}`, trial "
             f"{pv['trial']}) for target `{pv['target']}` under "
             f"{_constraints_text(pv['constraints'])}.", "",
             "## Architecture", "", "| decision | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m["arch"].items() if v is not None]
    lines += ["", f"Parameters: {m['params']:,}; fp32 weights {m['size_mb_fp32']:.2f} MB.", "",
              "## Dev quality", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in sorted((met.get("dev") or {}).items())
              if isinstance(v, (int, float))]
    src = met["latency_source"]
    lines += ["", f"## Latency on `{pv['target']}` ({src})", "",
              f"p50 per device-graph call: **{met['latency_ms']:.3f} ms**"
              + (f", real-time factor {met['rtf']:.4f}" if met.get("rtf") is not None else "")
              + ".", "", "## Training", "",
              f"{tr.get('steps')} steps, {tr.get('cpu_seconds')} CPU s on one thread.", "",
              "## Export", "",
              f"`{ex['file']}` ({ex['format']}, {ex['size_bytes']:,} bytes, sha256 "
              f"`{ex['sha256'][:16]}...`); {_parity_text(ex['parity'])}.",
              "Inputs: " + ", ".join(f"`{i['name']}` {i['shape']}" for i in ex["inputs"]) + ".",
              "", "## Provenance", "",
              f"Study storage `{pv['storage']}`, {pv['date']}, versions "
              + ", ".join(f"{k} {v}" for k, v in pv["versions"].items()) + ".", ""]
    return "\n".join(lines)


def _delay_cells(d: dict[str, Any], met: dict[str, Any]) -> list[str]:
    chunk = f"{d['chunk_ms']:.0f} ms" if d["chunk_ms"] else "full utterance"
    p50 = d["algorithmic_ms"] + met["latency_ms"]
    ci = met.get("delay_ci")
    p90 = met.get("delay_p90_ms")
    return [chunk, f"{d['lookahead_ms']:.0f} ms", f"{d['frontend_ms']:.0f} ms",
            f"{d['algorithmic_ms']:.0f} ms", f"{met['latency_ms']:.3f} ms",
            f"{p50:.1f} ms" + (f" (95% CI {ci[0]:.1f}-{ci[1]:.1f})" if ci else ""),
            f"{p90:.1f} ms" if p90 is not None else "-"]


def _parity_text(p: dict[str, Any] | None) -> str:
    if not p:
        return "not checked against PyTorch"
    return (f"checked against PyTorch on {p['samples']} inputs: max |diff| "
            f"{p['max_abs_diff']:.1e}, top-token agreement {p['token_agreement']:.1%}")


def _constraints_text(c: dict[str, Any] | None) -> str:
    parts = [fmt.format(c[k]) for k, fmt in (("max_latency_ms", "p50 compute <= {:g} ms"),
                                              ("max_delay_ms", "emission delay <= {:g} ms"),
                                              ("max_rtf", "real-time factor <= {:g}"),
                                              ("max_params", "params <= {:,}"),
                                              ("max_size_mb", "size <= {:g} MB"))
             if c and c.get(k) is not None]
    return "constraints " + ", ".join(parts) if parts else "no constraints"
