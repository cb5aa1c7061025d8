"""The lab: phones on several bench hosts, one Ray cluster.

``scan`` finds this host's phones (device files whose phone answers, and
phones attached but without a device file); ``BenchNode`` keeps a Ray node
advertising one resource per present phone (``hwnas lab join``);
``cluster_devices`` lists every phone of the cluster; ``Lab`` is the small
API a lab-bench script uses.
"""

from __future__ import annotations

from .api import Lab
from .cluster import cluster_devices
from .discover import Scan, scan
from .node import BenchNode

__all__ = ["BenchNode", "Lab", "Scan", "cluster_devices", "scan"]
