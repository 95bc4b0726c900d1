"""End-to-end stage ceilings on a tiny real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stylize_video.benchmarks import e2e


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return e2e.ensure_clip(tmp_path_factory.mktemp("clips"), 64, 48, 6, fps=25)


def test_clip_is_cached(clip: Path) -> None:
    mtime = clip.stat().st_mtime_ns
    assert e2e.ensure_clip(clip.parent, 64, 48, 6, fps=25) == clip
    assert clip.stat().st_mtime_ns == mtime
    assert not list(clip.parent.glob("*partial*"))
    info = e2e.probe_clip(clip)
    assert (info["width"], info["height"], info["frames"], info["audio"]) == (64, 48, 6, True)


def test_odd_clip_sizes_rounded_up_to_even(tmp_path: Path) -> None:
    # `--sizes 3x3`: the synthetic clip is H.264 4:2:0, which needs even sides
    info = e2e.probe_clip(e2e.ensure_clip(tmp_path, 3, 5, 2, fps=25))
    assert (info["width"], info["height"], info["frames"]) == (4, 6, 2)


def test_decode_ceiling_counts_frames(clip: Path) -> None:
    assert e2e.decode_ceiling(clip, 100).frames == 6
    res = e2e.decode_ceiling(clip, 4)
    assert res.stage == "decode" and res.status == "ok" and res.frames == 4
    assert res.fps == pytest.approx(4 / res.seconds)


@pytest.mark.parametrize("scale", [1, 2])
def test_encode_ceiling_output_size_and_cleanup(clip: Path, tmp_path: Path, scale: int) -> None:
    res = e2e.encode_ceiling(clip, scale, 9, tmp_path, e2e.EncodeSettings(options={"preset": "ultrafast"}), fps=25)
    assert res.status == "ok" and res.frames == 9  # the 6 clip frames cycled
    assert (res.detail["width"], res.detail["height"]) == (64 * scale, 48 * scale)
    assert res.detail["output_mb"] > 0
    assert list(tmp_path.iterdir()) == []  # the encoded file is deleted


def test_pipeline_default_encoder_settings() -> None:
    settings = e2e.EncodeSettings.pipeline_default()
    assert settings.codec == "libx264" and settings.pix_fmt == "yuv420p"


def test_model_ceiling_and_full(clip: Path, tmp_path: Path, fake_backend_cls) -> None:
    backend = fake_backend_cls()
    res = e2e.model_ceiling(backend, 64, 48, iters=5, warmup=2)
    assert res.frames == 5 and backend.calls == 7 and res.detail["backend"] == "torch"

    def runner(src: Path, dst: Path) -> dict:
        dst.write_bytes(b"video")
        return {"frames": 6, "stage_busy_s": {"decode": 0.1}}

    full = e2e.run_full(runner, clip, tmp_path)
    assert full.frames == 6 and full.detail["stage_busy_s"] == {"decode": 0.1}
    assert list(tmp_path.iterdir()) == []


def test_bottleneck_is_the_slowest_stage_alone() -> None:
    stages = [e2e.StageResult.timed("decode", 10, 0.1), e2e.StageResult.timed("model", 10, 2.0),
              e2e.StageResult.timed("encode", 10, 0.5), e2e.StageResult.timed("full", 10, 9.0)]
    assert e2e.name_bottleneck(stages) == "model"  # "full" is never the bottleneck
    assert e2e.name_bottleneck([e2e.StageResult("model", "skipped", "x")]) is None


def test_plain_transcode_lets_the_encoder_pick_frame_types(tmp_path):
    """As ffmpeg does: an all-intra source must not force x264 into all-intra output (the pipeline's frames
    carry no frame type either, so the baseline would otherwise skip x264's frame-type decisions)."""
    import av
    from stylize_video.benchmarks.e2e import EncodeSettings, plain_transcode

    src = tmp_path / "intra.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.gop_size = 1
        for i in range(12):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    out = tmp_path / "plain.mp4"
    res = plain_transcode(src, 1, 12, tmp_path, EncodeSettings(options={"preset": "ultrafast"}), keep=out)
    assert res.status == "ok" and res.frames == 12
    with av.open(str(out)) as c:
        assert sum(p.is_keyframe for p in c.demux(video=0) if p.size) == 1  # x264's own GOP, not the source's
