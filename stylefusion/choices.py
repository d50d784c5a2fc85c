"""The device and precision names the command lines offer; no torch, so `--help` answers at once."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda")
CPU_PRECISIONS = ("auto", "fp32", "bf16", "int8")
