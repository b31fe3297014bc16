"""What machine a measurement ran on: CPU model and core count, and the GPU when one is used."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def describe(device: str = "cpu") -> str:
    """e.g. 'AMD EPYC, 2 cores' or 'AMD EPYC, 16 cores, NVIDIA H100 80GB HBM3', for results files."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = f"{cpu}, {os.cpu_count()} cores"
    if device.startswith("cuda"):
        import torch
        where += f", {torch.cuda.get_device_name(0)}"
    return where
