"""The machine a measurement ran on, in one line, for the pages the bench scripts write."""

import os
import platform
from pathlib import Path


def describe() -> str:
    """E.g. "Linux x86_64, AMD EPYC 7B13, 2 cores": the system, the CPU model and the cores this process may use."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return f"{platform.system()} {platform.machine()}, {cpu}, {len(os.sched_getaffinity(0))} cores"
