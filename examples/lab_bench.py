"""A lab-bench script: list the lab's phones, then profile every phone
matching a pattern, first as one shared profile, then one profile each.

    python examples/lab_bench.py --address HEAD:6379 --workspace lab \\
        --device pixel6 --phones 'pixel6-*' --n 50
    python examples/lab_bench.py --loopback      # a whole lab on this host, on
                                                 # loopback (root: unshare -n)

With --loopback it starts a Ray head and two bench nodes, each with a
loopback ADB phone (hwnas.testing.lab), in a loopback-only network namespace,
and runs the same script against them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from hwnas.lab import Lab


def bench(address: str, workspace: Path, device: str, phones: str, n: int,
          space=None) -> None:
    with Lab(address, workspace) as lab:
        for p in lab.phones(phones):
            print(f"{p['device']:<16} on {p['host']:<16} {p['state']}")
        rows = lab.profile(device, n=n, phones=phones, space=space)
        print(f"{device}: {len(rows)} new rows from "
              f"{sorted({r['provenance']['phone'] for r in rows if r.get('provenance')})}")
        for name, own in lab.profile_each(phones, n=1).items():
            print(f"{name}: its own profile, {len(own)} new rows")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default="auto")
    ap.add_argument("--workspace", type=Path, default=Path("."))
    ap.add_argument("--device", default="pixel6", help="the profile (the phones' model)")
    ap.add_argument("--phones", default="pixel6-*", help="device-name pattern of the phones")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--loopback", action="store_true", help="a loopback lab on this host")
    args = ap.parse_args()
    if not args.loopback:
        bench(args.address, args.workspace, args.device, args.phones, args.n)
        return 0
    from hwnas.asr import default_space
    from hwnas.testing.lab import (
        KIND,
        TINY_SPACE,
        LoopbackLab,
        is_loopback_only,
        run_in_loopback_namespace,
    )

    if not is_loopback_only():
        return run_in_loopback_namespace([sys.executable, *sys.argv],
                                         env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode
    with tempfile.TemporaryDirectory() as tmp, \
            LoopbackLab(Path(tmp), ["loop-a", "loop-b"]) as lab:
        (lab.workspace / "tiny.toml").write_text(TINY_SPACE)
        bench(lab.address, lab.workspace, KIND, "loop-*", 2,
              space=default_space().with_toml(lab.workspace / "tiny.toml"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
