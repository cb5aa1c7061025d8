"""Every phone of the cluster: which node advertises it, and whether it is
free, busy (a measurement holds it) or unreachable (its node died)."""

from __future__ import annotations

from typing import Any

from hwnas.execution import device_resource

DEVICE_PREFIX = device_resource("")


def cluster_devices(ray: Any) -> list[dict[str, Any]]:
    """One row per advertised phone, from a connected ``ray`` module."""
    from .node import HOST_PREFIX

    available = ray.available_resources()
    rows = []
    for node in ray.nodes():
        res = node.get("Resources", {})
        host = next((k[len(HOST_PREFIX):] for k in res if k.startswith(HOST_PREFIX)),
                    node.get("NodeManagerHostname", "?"))
        for key in sorted(k for k in res if k.startswith(DEVICE_PREFIX)):
            if not node.get("Alive"):
                state = "unreachable: its node is dead"
            else:
                state = "free" if available.get(key, 0) >= 1 else "busy"
            rows.append({"device": key[len(DEVICE_PREFIX):], "host": host,
                         "node_ip": node.get("NodeManagerAddress"), "state": state,
                         "node_id": node.get("NodeID")})
    # a phone advertised by a live node wins over the same name on a dead one
    live = {r["device"] for r in rows if r["state"] in ("free", "busy")}
    return [r for r in rows if r["state"] in ("free", "busy") or r["device"] not in live]
