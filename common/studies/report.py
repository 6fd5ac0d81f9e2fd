"""Study outputs: CSV, PNG and Markdown files, each written atomically into one folder."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

# TODO(lead): common.atomic once it exists (atomic_write_bytes moves there).
from common.atomic import atomic_write_bytes


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically; returns the path."""
    atomic_write_bytes(path, text.encode())
    return Path(path)


def write_csv(path: str | os.PathLike, header: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> Path:
    """CSV with a header row; None cells are written empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return write_text(path, buf.getvalue())


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def new_figure(width: float = 7.0, height: float = 4.5):
    """(figure, axes) on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Fixed-width text table (for printing)."""
    cells = [[str(h) for h in header]] + [["-" if v is None else str(v) for v in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
