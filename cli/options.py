"""Declared ranges for numeric options, and options refused where unused.

A numeric option names its range in its type (``type=COUNT``), so argparse
refuses a value outside it in one line before any work; an option a command
or task does not read is refused by ``refuse_given``, never ignored."""

from __future__ import annotations

import argparse
from typing import Any


def _integer(low: int, high: int | None, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            v = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v

    parse.__name__ = what   # argparse names the type in its messages
    return parse


def _number(low: float, inclusive: bool, what: str) -> Any:
    def parse(text: str) -> float:
        import math

        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v) or v < low or (v == low and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v

    parse.__name__ = what
    return parse


COUNT = _integer(1, None, "an integer >= 1")
COUNT0 = _integer(0, None, "an integer >= 0")
COUNT2 = _integer(2, None, "an integer >= 2")
SEED = _integer(0, 2**32 - 1, "an integer from 0 to 4294967295")
POSITIVE = _number(0.0, False, "a finite number > 0")
NONNEGATIVE = _number(0.0, True, "a finite number >= 0")


def defaults_of(parser: argparse.ArgumentParser) -> dict[str, tuple[str, Any]]:
    """dest -> (its flag, its default), for ``refuse_given``."""
    return {a.dest: (a.option_strings[-1], a.default) for a in parser._actions
            if a.option_strings and a.dest != "help"}


def refuse_given(args: argparse.Namespace, dests: Any, why: str) -> None:
    """One line naming the options among ``dests`` that were given (differ from
    their default) where they would be ignored: an option is used or refused."""
    given = [flag for dest, (flag, default) in getattr(args, "option_defaults", {}).items()
             if dest in dests and getattr(args, dest, default) != default]
    if given:
        raise ValueError(f"{', '.join(given)}: {why}")


def add_device_args(s: argparse.ArgumentParser) -> None:
    """Where and in what precision training runs (`hwnas train`, `hwnas search`)."""
    s.add_argument("--train-device", dest="train_device", metavar="DEV",
                   help="auto (default: the first CUDA GPU where one is visible, else the "
                        "CPU), cpu, cuda or cuda:N; $HWNAS_TRAIN_DEVICE sets the default")
    s.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto (default): bf16 on GPUs that have it, fp32 on CPUs (bf16 "
                        "was not faster on this project's CPUs: docs/data-and-training.md); "
                        "fp32; bf16 or fp16 (GPUs) autocast of the forward pass, losses in "
                        "fp32")
