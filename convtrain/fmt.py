"""Numbers and tables as text, for the CLI's output and the library's own messages.

Imports nothing from the package, so that any layer may use it (the library formats numbers in
its messages; only convtrain/cli/ prints).
"""
from __future__ import annotations


def fmt_int(n: int) -> str:
    """12345 -> '12,345'."""
    return f"{n:,}"


def fmt_flops(n: int) -> str:
    """A count with a decimal unit: 5632 -> '5.63K', 2.1e9 -> '2.10G'; below 1000 as is."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def fmt_bytes(n: int) -> str:
    """A size with a binary unit: 2048 -> '2.0 KiB'; below 1 KiB in bytes."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """Plain text table; `align` is a string of 'l'/'r' per column."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for j, row in enumerate(cells):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
