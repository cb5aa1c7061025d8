"""Export the phones' reference model again: the CPU devices' reference
preset (``conformer_xs``), its chunk graph, as fp32 TFLite."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def main() -> int:
    from hwnas.adapters.android import REFERENCE_FILE
    from hwnas.export import export
    from hwnas.tasks import preset

    work = Path(tempfile.mkdtemp(prefix="hwnas-reference-"))
    try:
        art = export(preset("conformer_xs"), "tflite", work)
        shutil.copyfile(art.path, REFERENCE_FILE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {REFERENCE_FILE} ({REFERENCE_FILE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
