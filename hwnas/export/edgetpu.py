"""Edge TPU compilation: run ``edgetpu_compiler`` on a full-integer model and
parse its report of which operations map to the TPU and which fall back to
the CPU. The parser is a pure function tested on captured compiler output."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwnas.export.errors import ExportError

COMPILER = "edgetpu_compiler"
MAPPED = "Mapped to Edge TPU"

_STATUS = re.compile(r"Mapped to Edge TPU|Operation |not supported|unsupported|"
                     r"More than one subgraph|Tensor has|not mapped", re.I)
_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


@dataclass
class OperatorRow:
    op: str
    count: int
    status: str

    @property
    def on_tpu(self) -> bool:
        return self.status == MAPPED


@dataclass
class CompilerReport:
    compiled: bool
    version: str | None = None
    total_ops: int | None = None
    tpu_ops: int = 0
    cpu_ops: int = 0
    subgraphs: int | None = None
    on_chip_bytes: int | None = None
    off_chip_bytes: int | None = None
    output_model: str | None = None
    operators: list[OperatorRow] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _size(text: str) -> int:
    m = re.fullmatch(r"([\d.]+)\s*([KMG]?i?B)", text.strip())
    if not m:
        raise ValueError(f"unrecognised size {text!r}")
    return round(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def parse_compiler_log(text: str) -> CompilerReport:
    """Turn ``edgetpu_compiler -s`` stdout into numbers.

    The operator table lists ``OPERATOR  COUNT  STATUS`` rows; an operator
    may appear on several rows with different statuses. TPU/CPU counts come
    from the explicit summary lines when present, else from the table.
    """
    # "Model compiled successfully in N ms." and, for a partial mapping, "Model
    # successfully compiled but not all operations are supported": both compiled
    rep = CompilerReport(compiled=re.search(r"compiled successfully|successfully compiled",
                                            text) is not None)
    # numbers may be aligned with runs of spaces; the parameters line is worded
    # "model parameters" or "params" depending on the version
    fields_ = {
        "version": r"Edge TPU Compiler version\s+(\S+)",
        "total_ops": r"Total number of operations:\s*(\d+)",
        "subgraphs": r"Number of Edge TPU subgraphs:\s*(\d+)",
        "on_chip_bytes": r"On-chip memory used for caching (?:model )?param(?:eter)?s:\s*(.+)",
        "off_chip_bytes": r"Off-chip memory used for streaming uncached (?:model )?"
                          r"param(?:eter)?s:\s*(.+)",
        "output_model": r"Output model:\s*(.+)",
    }
    for name, pat in fields_.items():
        m = re.search(pat, text)
        if not m:
            continue
        raw = m.group(1).strip()
        if name.endswith("bytes"):
            setattr(rep, name, _size(raw))
        elif name in ("total_ops", "subgraphs"):
            setattr(rep, name, int(raw))
        else:
            setattr(rep, name, raw)
    table = re.search(r"Operator\s+Count\s+Status\s*\n(.*)", text, re.S)
    # without the header (a pasted excerpt), rows are recognised by their shape
    # and a status the compiler prints
    body = table.group(1) if table else text
    for line in body.splitlines():
        m = re.match(r"^\s*([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$", line)
        if m and (table or _STATUS.search(m.group(3))):
            rep.operators.append(OperatorRow(m.group(1), int(m.group(2)), m.group(3)))
    tpu = re.search(r"Number of operations that will run on Edge TPU:\s*(\d+)", text)
    cpu = re.search(r"Number of operations that will run on CPU:\s*(\d+)", text)
    rep.tpu_ops = int(tpu.group(1)) if tpu else sum(r.count for r in rep.operators if r.on_tpu)
    rep.cpu_ops = int(cpu.group(1)) if cpu else sum(r.count for r in rep.operators
                                                     if not r.on_tpu)
    if not rep.compiled:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        errs = [ln for ln in lines if re.search(r"error|fail|abort|not supported|invalid",
                                                ln, re.I)]
        rep.error = (errs or lines or ["no output"])[-1]
    return rep


def compiler_available() -> tuple[bool, str]:
    path = shutil.which(COMPILER)
    if path:
        return True, path
    return False, (f"{COMPILER} not found on PATH (install Coral's Edge TPU compiler, "
                   "Debian package 'edgetpu-compiler', x86-64 Linux only)")


def compile_edgetpu(int8_model: Path, out_dir: Path, timeout_s: int = 600
                    ) -> tuple[Path, CompilerReport]:
    """Compile a full-integer TFLite model; returns the compiled path and report."""
    ok, where = compiler_available()
    if not ok:
        raise ExportError(where)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([where, "-s", "-o", str(out_dir), str(int8_model)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{COMPILER} did not finish within {timeout_s} s") from None
    report = parse_compiler_log(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0 or not report.compiled:
        raise ExportError(f"{COMPILER} failed: {report.error or f'exit {proc.returncode}'}")
    compiled = out_dir / (int8_model.stem + "_edgetpu.tflite")
    if not compiled.is_file():
        raise ExportError(f"{COMPILER} reported success but wrote no {compiled.name}")
    return compiled, report
