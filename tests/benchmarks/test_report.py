"""The whole record from one (fake-backend) run: schema, tables, Markdown, PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from stylize_video.benchmarks.plot import render_png, write_plot
from stylize_video.benchmarks.record import write_json
from stylize_video.benchmarks.tables import render_markdown, render_text
from stylize_video.benchmarks.validate import validate


def test_record_sections(sample_record: dict) -> None:
    r = sample_record
    assert validate(r) == []
    assert r["model"]["random_weights"] == "style"
    assert any("RANDOM weights" in n for n in r["notes"])
    assert r["baseline"] == "torch-fp32" and r["settings"]["tf32"] is False
    e2e = r["end_to_end"]
    assert [s["stage"] for s in e2e["stages"]] == ["decode", "encode", "model", "plain", "full"]
    assert e2e["bottleneck"] in ("decode", "model", "encode") and e2e["full_vs_ceiling"] > 0
    assert r["throughput"]["status"] == "skipped" and "CUDA" in r["throughput"]["reason"]


def test_text_and_markdown_name_skips_and_columns(sample_record: dict) -> None:
    for text in (render_text(sample_record), render_markdown(sample_record)):
        assert "PSNR vs baseline (dB)" in text and "speed-up" in text
        assert "reference" in text  # the baseline row
        assert "tensorrt-fp16" in text and "no CUDA device" in text
        assert "bottleneck:" in text
    md = render_markdown(sample_record)
    assert md.startswith("# stylize-bench") and "| backend | input size |" in md


def test_plot_and_json_written_atomically(sample_record: dict, tmp_path: Path) -> None:
    png = write_plot(tmp_path / "b.png", sample_record)
    img = Image.open(png)
    assert img.format == "PNG" and img.width == 960 and img.height > 150
    js = write_json(tmp_path / "b.json", sample_record)
    assert json.loads(js.read_text()) == sample_record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.png"]  # no .partial left


def test_plot_without_results_still_renders(sample_record: dict) -> None:
    empty = {**sample_record, "model_results": []}
    assert Image.open(io.BytesIO(render_png(empty))).size[0] == 960
