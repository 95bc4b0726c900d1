"""``stylize-export list``: every registry entry, and what of it the fetch cache already holds.

The cache is the one ``stylize-export fetch`` fills and ``stylize-video --style`` reads
(``$STYLIZE_CACHE`` or ``~/.cache/stylize-video``, see ``engine_cache.cache_root``): the download under
``downloads/`` and the imported model under ``models/NAME.onnx`` (exported) and ``models/NAME.pth``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from stylize_video.export.registry import entries

COLUMNS = ("style", "task", "source", "licence", "sha256", "local path")


def local_model(root: Path, style: str) -> Path | None:
    """The fetched model of ``style`` in cache ``root``: ``models/NAME.onnx``, else ``models/NAME.pth``, else None.

    ONNX first, as ``stylize-video --style`` prefers it (``pipeline.styles.resolve_style``).
    """
    for suffix in (".onnx", ".pth"):
        path = root / "models" / f"{style}{suffix}"
        if path.is_file():
            return path
    return None


def list_styles(root: Path) -> dict[str, Any]:
    """The JSON document of ``stylize-export list --json``: ``{"cache": str, "styles": [row, ...]}``.

    Each row: style, task (``style``; ``sr`` would be a super-resolution model), source (a ``fetch --source``
    value), opset (zoo only, else None), url, sha256 (None: unpublished), sha256_pinned, licence (SPDX id),
    filename, download (the cached download or None) and local_path (``local_model`` or None).
    """
    rows = []
    for entry in entries():
        download = root / "downloads" / entry.filename
        model = local_model(root, entry.style)
        rows.append({**asdict(entry), "sha256_pinned": entry.sha256 is not None,
                     "download": str(download) if download.is_file() else None,
                     "local_path": str(model) if model is not None else None})
    return {"cache": str(root), "styles": rows}


def format_table(listing: dict[str, Any]) -> str:
    """Plain-text table of ``list_styles``: one line per entry, columns aligned, ``-`` where nothing is fetched."""
    lines = [[r["style"], r["task"], r["source"] + (f" (opset {r['opset']})" if r["opset"] is not None else ""),
              r["licence"], "pinned" if r["sha256_pinned"] else "not pinned", r["local_path"] or "-"]
             for r in listing["styles"]]
    table = [[c.upper() for c in COLUMNS], *lines]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    text = ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in table]
    return "\n".join([*text, f"cache: {listing['cache']} (fill it with: stylize-export fetch STYLE)"])
