"""The accuracy-against-MACs plot of a search (matplotlib, SVG and PNG), its Pareto front marked: the trials no
other beats on both (more accurate and no more MACs, or as accurate and fewer MACs)."""
from __future__ import annotations

import io
from pathlib import Path

from builder.core.files import write_bytes


def front(rows: list) -> list:
    """The non-dominated rows (highest accuracy, fewest MACs), by MACs."""
    pts = sorted(rows, key=lambda r: (r["macs"], -r["val_accuracy"]))
    out, best = [], -1.0
    for r in pts:
        if r["val_accuracy"] > best:
            out.append(r)
            best = r["val_accuracy"]
    return out


def write_pareto(rows: list, folder: Path, name: str) -> list:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "block-builder"  # the same study, the same file
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    if rows:
        ax.scatter([r["macs"] for r in rows], [r["val_accuracy"] * 100 for r in rows], s=18, color="#90A4AE",
                   label="trials")
        f = front(rows)
        ax.plot([r["macs"] for r in f], [r["val_accuracy"] * 100 for r in f], "-o", color="#D81B60", ms=4,
                label="Pareto front")
        for r in f:
            ax.annotate(str(r["number"]), (r["macs"], r["val_accuracy"] * 100), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no trial has trained yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("MACs (inference)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{name}: accuracy against cost", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written = []
    for suffix, extra in ((".svg", {"metadata": {"Date": None}}), (".png", {"metadata": {"Software": None}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix[1:], **extra)
        write_bytes(folder / f"pareto{suffix}", buf.getvalue())
        written.append(folder / f"pareto{suffix}")
    plt.close(fig)
    return written
