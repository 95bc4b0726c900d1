"""Size/option parsing: smoke, cardinality, exceptions."""

from __future__ import annotations

from pathlib import Path

import pytest
from stylize_video.benchmarks.config import FrameSize, model_kind_of, parse_int_list, parse_size, parse_sizes
from stylize_video.errors import StylizeError


def test_named_and_explicit_sizes() -> None:
    assert parse_size("720p") == FrameSize("720p", 1280, 720)
    assert parse_size(" 2160P ") == FrameSize("2160p", 3840, 2160)
    assert parse_size("800x600") == FrameSize("800x600", 800, 600)
    # every backend pads to its model's size rules, so tiny sizes are timed as they are
    assert parse_size("3x3") == FrameSize("3x3", 3, 3) and parse_size("1x7") == FrameSize("1x7", 1, 7)


def test_sizes_keep_order_and_drop_duplicates() -> None:
    sizes = parse_sizes("360p,180p,360p,,64x48")
    assert [s.label for s in sizes] == ["360p", "180p", "64x48"]


@pytest.mark.parametrize("text", ["", "720", "720i", "0x12", "12x0", "axb", "1280x"])
def test_bad_sizes_are_one_line_errors(text: str) -> None:
    with pytest.raises(StylizeError) as err:
        parse_sizes(text)
    assert "\n" not in str(err.value)


def test_int_lists() -> None:
    assert parse_int_list("4,1,2,2", "--x") == [1, 2, 4]
    for bad in ("0", "a", "", "1,-1"):
        with pytest.raises(StylizeError, match="--x"):
            parse_int_list(bad, "--x")


def test_model_kind(tmp_path: Path) -> None:
    for name, kind in (("a.pth", "ckpt"), ("a.onnx", "onnx"), ("a.plan", "plan"), ("a.engine", "plan")):
        (tmp_path / name).write_bytes(b"x")
        assert model_kind_of(tmp_path / name) == kind
    with pytest.raises(StylizeError, match="not found"):
        model_kind_of(tmp_path / "missing.onnx")
    (tmp_path / "a.txt").write_bytes(b"x")
    with pytest.raises(StylizeError, match="unknown model type") as exc:
        model_kind_of(tmp_path / "a.txt")
    assert "expected a PyTorch checkpoint (.pth, .pt, .ckpt" in str(exc.value)  # stylize-video's list
