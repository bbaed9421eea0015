"""The machine a benchmark ran on: cores, CPU, load, Python and the versions that matter.

Figures mean nothing without it: a 2-core shared box and a 32-core server differ by an
order of magnitude, and a load average of 2 on 2 cores halves what a run can show.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Final

import msgspec

__all__ = ["PACKAGES", "Machine", "describe_machine", "load_average"]

PACKAGES: Final = (
    "granian",
    "litestar",
    "msgspec",
    "onnxruntime",
    "numpy",
    "scikit-learn",
    "fastapi",
    "uvicorn",
    "pydantic",
    "pytest-benchmark",
)


class Machine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the benchmark ran on."""

    nproc: int
    cpu_model: str
    mem_total_mb: float
    python: str
    platform: str
    # 1, 5 and 15 minute load averages just before the run started.
    load_before: tuple[float, float, float]
    versions: dict[str, str]


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (/proc/loadavg)."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _wrk_version() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        return "not installed"
    # `wrk --version` prints its banner and exits 1; the banner is what we want.
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def describe_machine() -> Machine:
    """The machine this process runs on, now."""
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["wrk"] = _wrk_version()
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        mem_total_mb=_mem_total_mb(),
        python=platform.python_version(),
        platform=platform.platform(),
        load_before=load_average(),
        versions=versions,
    )
