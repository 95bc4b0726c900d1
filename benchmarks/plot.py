"""PNG bar chart of FPS per backend per resolution, drawn with Pillow.

Pillow rather than matplotlib: it is already a dependency, so the chart is always produced (and
tested) with no optional extra; the chart is simple enough that a plotting library buys nothing.
One panel per resolution, each with its own FPS axis: sizes differ by 10-30x in speed, and a shared
axis would flatten the large sizes to nothing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from stylize_video.benchmarks.tables import fmt_fps
from stylize_video.cliargs import write_atomic

_W = 960
_LABEL_W = 190
_VALUE_W = 150
_BAR_H = 18
_GAP = 6
_PANEL_PAD = 34
_BASELINE_COLOUR = (140, 140, 140)
_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (23, 190, 207), (188, 189, 34)]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def _panels(record: dict[str, Any]) -> list[tuple[str, list[tuple[str, float]]]]:
    """[(size label, [(variant, fps), ...]), ...] for the results that ran, in run order."""
    panels: dict[str, list[tuple[str, float]]] = {}
    scale = record["model"]["scale"] or 1
    for r in record["model_results"]:
        if r["status"] == "ok" and r["fps"]:
            w, h = r["width"], r["height"]
            label = f"{r['size']} ({w}x{h} -> {w * scale}x{h * scale})" if scale > 1 else f"{r['size']} ({w}x{h})"
            panels.setdefault(label, []).append((r["variant"], r["fps"]))
    return list(panels.items())


def render_png(record: dict[str, Any]) -> bytes:
    """The chart as PNG bytes. Baseline bars are grey and marked "(baseline)"; speed-ups are printed."""
    panels = _panels(record)
    baseline = record["baseline"]
    variants = list(dict.fromkeys(v for _, bars in panels for v, _ in bars))
    colours = {v: _BASELINE_COLOUR if v == baseline else _PALETTE[i % len(_PALETTE)] for i, v in enumerate(variants)}
    title_h = 56
    height = title_h + sum(_PANEL_PAD + len(bars) * (_BAR_H + _GAP) for _, bars in panels) + 30
    img = Image.new("RGB", (_W, max(height, 120)), "white")
    draw = ImageDraw.Draw(img)
    big, small = _font(16), _font(12)
    m = record["machine"]
    gpu = m["gpu"]["name"] if m["gpu"] else "no GPU"
    draw.text((12, 8), f"stylize-bench: FPS per backend (model only, batch {record['settings']['batch']})",
              fill="black", font=big)
    weights = " - RANDOM weights" if record["model"]["random_weights"] else ""
    draw.text((12, 30), f"{m['label']}: {m['cpu']['count']}x {m['cpu']['model']}, {gpu}; {record['created']}{weights}",
              fill=(60, 60, 60), font=small)
    y = title_h
    if not panels:
        draw.text((12, y + 10), "no backend produced a measurement", fill=(180, 0, 0), font=big)
    for size_label, bars in panels:
        draw.text((12, y + 8), size_label, fill="black", font=big)
        y += _PANEL_PAD - 4
        top = max(fps for _, fps in bars)
        base_fps = next((fps for v, fps in bars if v == baseline), None)
        span = _W - _LABEL_W - _VALUE_W - 12
        for variant, fps in bars:
            name = f"{variant} (baseline)" if variant == baseline else variant
            draw.text((12, y + 2), name, fill="black", font=small)
            length = max(1, round(span * fps / top))
            draw.rectangle([_LABEL_W, y, _LABEL_W + length, y + _BAR_H], fill=colours[variant])
            value = f"{fmt_fps(fps)} fps" + (f"  ({fps / base_fps:.2f}x baseline)" if base_fps and variant != baseline else "")
            draw.text((_LABEL_W + length + 6, y + 2), value, fill="black", font=small)
            y += _BAR_H + _GAP
        draw.line([_LABEL_W, y - _GAP + 2, _LABEL_W + span, y - _GAP + 2], fill=(200, 200, 200))
        y += 4
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_plot(path: Path, record: dict[str, Any]) -> Path:
    return write_atomic(path, render_png(record))
