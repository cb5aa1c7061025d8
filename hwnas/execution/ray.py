"""Units on a Ray cluster (``--executor ray --address auto|HOST:PORT``).

Placement is Ray's: each unit's ``needs()`` becomes the task's resources.
Exports and training rungs take one CPU on any node; a measurement takes no
CPU but the device's custom resource (``device:NAME``, advertised by the
node its phone is attached to: ``hwnas lab join``), so a phone runs one
measurement at a time and, on a bench host that joins with no CPUs (the
default), no export competes with it.

Results come back to the driver, which stays the single writer of the
profile store and the study. Ray does not retry a unit itself: a unit whose
worker or node died comes back as :class:`WorkerLost`, and the driver decides
(another phone of the pool, or wait for this one).

Ray is imported here only, when this executor is asked for.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from typing import Any

from hwnas.errors import first_line

from ._base import Executor, Unit, WorkerContext, WorkerLost, device_resource

_ctx: WorkerContext | None = None


def _run_unit(unit: Unit) -> Any:
    global _ctx
    if _ctx is None:   # once per worker process: adapters and corpora are reused
        import torch

        torch.set_num_threads(1)
        _ctx = WorkerContext(devices_from=os.environ.get("HWNAS_LAB_WORKSPACE"))
    return unit.run(_ctx)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray executor needs Ray: pip install 'hwnas[lab]' "
                           "(ray==2.60.0)") from None
    return ray


def connect(address: str = "auto") -> Any:
    """This process as a driver of the cluster at ``address``."""
    ray = import_ray()
    if not ray.is_initialized():
        target = address if address != "auto" else _this_hosts_cluster()
        reachable(target)
        try:
            ray.init(address=target, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)
        except ConnectionError as e:
            where = "on this host" if address == "auto" else f"at {address}"
            raise ConnectionError(f"no Ray cluster {where} ({str(e).splitlines()[0][:120]}); "
                               "start one with `ray start --head` or join a bench host with "
                               "`hwnas lab join`") from None
    return ray


def _this_hosts_cluster() -> str:
    """What ``auto`` means to Ray: $RAY_ADDRESS, else the address the last
    `ray start` on this host wrote down (which may be stale: checked next)."""
    import tempfile
    from pathlib import Path

    env = os.environ.get("RAY_ADDRESS", "")
    if env and env != "auto":
        return env
    noted = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return noted.read_text().strip()
    except OSError:
        raise ConnectionError("no Ray cluster on this host; start one with `ray start --head` "
                              "or give --address HOST:PORT") from None


#: a cheap call every Ray head (GCS) answers; anything else listening does not
_HEAD_CALL = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def reachable(address: str, answer_s: float = 5.0) -> None:
    """Fail in one line when nothing listens at HOST:PORT, or when what
    listens does not answer a Ray head's call within ``answer_s`` (Ray itself
    keeps retrying for about a minute, and waits forever on a silent peer)."""
    import socket

    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3.0).close()
    except OSError as e:
        raise ConnectionError(f"no Ray cluster at {address} ({e.strerror or e}); start its head "
                              "with `ray start --head --port PORT`") from None
    try:
        import grpc  # Ray's own dependency
    except ImportError:
        raise ValueError("the lab needs Ray: pip install 'hwnas[lab]' (ray==2.60.0)") from None
    with grpc.insecure_channel(f"{host or '127.0.0.1'}:{port}") as channel:
        call = channel.unary_unary(_HEAD_CALL, request_serializer=None,
                                   response_deserializer=None)
        try:
            call(b"", timeout=answer_s)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ConnectionError(
                    f"{address} accepted a connection but did not answer within "
                    f"{answer_s:g} s: not a Ray cluster's head, or one that hangs") from None
            raise ConnectionError(f"{address} answered, but not as a Ray cluster's head "
                                  f"({e.code().name}: {first_line(e.details() or '')})") from None


class RayExecutor(Executor):
    name = "ray"
    concurrent = True

    def __init__(self, address: str = "auto") -> None:
        self.ray = connect(address)
        self._task = self.ray.remote(_run_unit)

    def submit(self, unit: Unit) -> Future:
        needs = unit.needs() if hasattr(unit, "needs") else {"num_cpus": 1}
        ref = self._task.options(max_retries=0, **needs).remote(unit)
        out: Future = Future()
        out.ref = ref  # type: ignore[attr-defined]  # for abandon()
        ref.future().add_done_callback(lambda f: self._settle(f, out))
        return out

    def abandon(self, future: Future) -> None:
        # a task whose node died before its worker started is not failed by Ray:
        # it waits, unschedulable, for a resource nobody advertises any more
        ref = getattr(future, "ref", None)
        if ref is not None and not future.done():
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or its node is gone
                pass

    def _settle(self, done: Future, out: Future) -> None:
        if out.done():
            return
        exc = done.exception()
        if exc is None:
            out.set_result(done.result())
            return
        ex = self.ray.exceptions
        if isinstance(exc, ex.RayTaskError):          # the unit's own exception
            cause = getattr(exc, "cause", None)
            out.set_exception(cause if isinstance(cause, BaseException) else exc)
        elif isinstance(exc, ex.RayError):            # its worker or node died
            out.set_exception(WorkerLost(f"{type(exc).__name__}: "
                                         f"{str(exc).strip().splitlines()[0][:160]}"))
        else:
            out.set_exception(exc)

    def device_available(self, device: str) -> bool:
        return self.ray.cluster_resources().get(device_resource(device), 0) >= 1

    def close(self) -> None:
        if self.ray.is_initialized():
            self.ray.shutdown()
