"""Shape-profile parsing and validation (no TensorRT needed)."""

from __future__ import annotations

import pytest
from stylize_video.errors import StylizeError
from stylize_video.export.shapes import ShapeProfile, build_profile, default_profile, parse_hw


@pytest.mark.parametrize("text, hw", [("1080x1920", (1080, 1920)), (" 64X64 ", (64, 64)), ("2160x3840", (2160, 3840))])
def test_parse_hw(text, hw):
    assert parse_hw(text) == hw


@pytest.mark.parametrize("text", ["1080", "1080*1920", "axb", "4x64", "", "-1x5"])
def test_exception_parse_hw(text):
    with pytest.raises(StylizeError):
        parse_hw(text, "--opt-shape")


def test_default_profile_covers_4k_both_orientations():
    p = default_profile("style")
    assert (p.min, p.opt, p.max) == ((64, 64), (1080, 1920), (3840, 3840))
    for shape in [(1, 3, 2160, 3840), (1, 3, 3840, 2160), (1, 3, 1081, 1917), (1, 3, 64, 64)]:
        assert p.contains(shape)
    assert not p.contains((1, 3, 3841, 100)) and not p.contains((2, 3, 64, 64)) and not p.contains((1, 4, 64, 64))


def test_sr_default_profile_keeps_outputs_within_4k():
    p = default_profile("sr", 4)
    assert p.max == (960, 960) and p.min == (16, 16)


def test_build_profile_static_and_custom():
    s = build_profile(static="720x1280")
    assert s.is_static and s.cli_args() == ["--static", "720x1280"]
    c = build_profile(min_shape="128x128", max_shape="1080x1080")
    assert c.opt == (1080, 1080)  # default opt clamped into the user's range
    assert c.describe() == "128x128-1080x1080-1080x1080"


def test_exception_profile_order():
    with pytest.raises(StylizeError, match="min <= opt <= max"):
        build_profile(min_shape="512x512", opt_shape="256x256", max_shape="1024x1024")
    with pytest.raises(StylizeError, match="cannot be combined"):
        build_profile(static="64x64", max_shape="128x128")
    with pytest.raises(StylizeError, match="max batch"):
        ShapeProfile((64, 64), (64, 64), (64, 64), max_batch=0)


def test_round_trip_and_widen():
    p = ShapeProfile((64, 64), (1080, 1920), (2160, 3840), max_batch=2)
    assert ShapeProfile.from_dict(p.to_dict()) == p
    w = p.widened_to((4, 3, 3000, 100))
    assert w.contains((4, 3, 3000, 100)) and w.max == (3000, 3840) and w.max_batch == 4
    assert "--max-batch" in w.cli_args()
