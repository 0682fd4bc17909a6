"""Human-readable quantities for messages and the UI."""

from __future__ import annotations


def fmt_bytes(n: float) -> str:
    """1234 → '1 KB', 3_000_000 → '3.0 MB', 1_117_320_736 → '1.12 GB'."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:,.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} KB"
    return f"{n:.0f} bytes"
