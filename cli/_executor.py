"""The --executor and --address options, shared by the commands whose work
can run elsewhere (profile, predictor adapt, search)."""

from __future__ import annotations

from typing import Any


def add_executor_arg(s: Any, what: str) -> None:
    from hwnas import execution

    s.add_argument("--executor", default="local", choices=execution.names(),
                   help=f"where {what} run: local (this process, the default), process "
                        "(a worker process: a converter or trainer that crashes takes the "
                        "worker down, not this command) or ray (a Ray cluster: phones are "
                        "the resources bench hosts advertise with `hwnas lab join`)")
    s.add_argument("--address", default="auto", metavar="auto|HOST:PORT",
                   help="with --executor ray: the cluster's head (default auto: the cluster "
                        "this host belongs to)")


def open_executor(args: Any, gpus: tuple[int, ...] = ()) -> Any:
    """The executor --executor names; ``gpus``: the process executor starts
    one worker per GPU, each seeing only its own."""
    from hwnas import execution

    name = getattr(args, "executor", "local")
    options = {"address": args.address} if name == "ray" else \
        {"gpus": gpus} if name == "process" and gpus else {}
    return execution.make(name, **options)
