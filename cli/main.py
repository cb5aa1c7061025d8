"""hwnas command line. Thin: parse arguments, call hwnas, print.

Every error the user can cause (bad JSON, unknown field, impossible
combination, unwritable output, failed conversion) ends as one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

import hwnas

from ._common import CLIError
from .interrupt import Terminated, on_sigterm_interrupt

EPILOG = """examples:
  hwnas space show                     the decisions and their choices
  hwnas space count                    exact number of valid architectures
  hwnas space sample --n 5 --seed 7 --json > archs.jsonl
  hwnas space presets                  hand-designed baselines
  hwnas stats --preset conformer_xs    parameters and FLOPs
  hwnas export arch.json --format tflite-int8 --out exported/
  hwnas devices                        device files; reachable now, or why not
  hwnas devices --cluster              every phone of the lab's Ray cluster
  hwnas lab join --address HEAD:6379   a bench host advertises its phones to the lab
  hwnas profile --device cpu --n 100   measure 100 sampled architectures (resumable)
  hwnas profile show --device cpu      what a profile holds
  hwnas bench model.onnx --device cpu --ops   benchmark any model file; where the time goes
  hwnas predictor train --device cpu   latency predictor from the profile (XGBoost)
  hwnas predictor adapt --from cpu --device cpu-torch --n 20
  hwnas predict --device cpu --preset conformer_s
  hwnas data build --langs en,es,de         the built-in synthetic speech corpus
  hwnas train --preset conformer_xs --budget 3m   train; learning curve, CER/WER
  hwnas train --preset conformer_xs --budget 30m --train librispeech:DIR --dev kaldi:DIR
  hwnas score runs/train/RUN --test librispeech:DIR   CER/WER of a saved run
  hwnas supernet train --family conformer --budget 60m   weight-sharing supernet
  hwnas search --target cpu --streaming --max-latency 2 --cer-budget 40s,2m
  hwnas report hwnas                        figures and HTML of a study
  hwnas tts train --preset lightspeech_like --budget 5m   the TTS task
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwnas", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Find speech-recognition architectures that are accurate and fast "
                    "on your hardware.")
    p.add_argument("--version", action="version", version=f"hwnas {hwnas.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    # one module per command group, in the order `hwnas --help` lists them
    from . import (
        bench,
        data,
        devices,
        export,
        lab,
        predict,
        predictor,
        profile,
        report,
        score,
        search,
        supernet,
        train,
        tts,
    )
    from . import space as space_cmds

    for module in (space_cmds, export, devices, profile, bench, predictor, predict, data, train,
                   score, supernet, report, search, lab, tts):
        module.add_parsers(sub)
    return p


class _NoteHandler(logging.Handler):
    """The library's warnings as one ``hwnas: note:`` line each, written to the
    stderr of the moment (a progress bar may have redirected it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"hwnas: note: {record.getMessage()}", file=sys.stderr)


def _notes_to_stderr() -> None:
    log = logging.getLogger("hwnas")
    if not any(isinstance(h, _NoteHandler) for h in log.handlers):
        log.addHandler(_NoteHandler(logging.WARNING))
        log.propagate = False


def main(argv: list[str] | None = None) -> int:
    import signal

    _notes_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    previous = on_sigterm_interrupt()
    try:
        code = args.func(args)
        sys.stdout.flush()   # a closed pipe shows here, not at the interpreter's exit
        return code
    except (CLIError, ValueError) as e:
        print(f"hwnas: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:   # `hwnas space sample | head -1`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"hwnas: error:{where} {e.strerror or e}", file=sys.stderr)
        return 1
    except Terminated:
        print("hwnas: terminated (SIGTERM); what was finished is kept, and the same command "
              "continues", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("hwnas: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:
        why = str(e) or "out of memory (an architecture or input too large for this machine)"
        print(f"hwnas: error: {why}", file=sys.stderr)
        return 1
    except RecursionError:
        print("hwnas: error: input nested too deeply to read", file=sys.stderr)
        return 1
    except Exception as e:
        from hwnas.search.storage import failure

        line = failure(e)
        if line is None:
            raise
        print(f"hwnas: error: {line}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
