"""Segments and joins in-process (the worker code itself, no executor): where inputs are cut, the DTS the join
writes, a lossy encoder with B-frames, and the manifest keys that decide what a re-run may reuse."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import av
import numpy as np
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.driver import segment_settings
from stylize_video.pipeline.batch.join import JoinOptions, decode_timestamps, encoder_delay, join_segments
from stylize_video.pipeline.batch.segments import plan_input
from stylize_video.pipeline.batch.worker import SegmentTask, SegmentWorker, WorkerConfig
from stylize_video.pipeline.cli import main as stylize_video
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.io.source import FileSourceOptions
from stylize_video.pipeline.synth import make_test_clip


def _packets(path):
    with av.open(str(path)) as c:
        return [(p.pts, p.dts, p.is_keyframe) for p in c.demux(video=0) if p.size]


@pytest.mark.parametrize("name", ["a.mp4", "b.mkv"])
def test_plan_cuts_at_keyframes(clips, name, kit):
    plan = plan_input(clips / name, 1.0)
    packets = _packets(clips / name)
    keyframes = {pts for pts, _, key in packets if key}
    segs = plan.segments
    assert len(segs) == kit.SEGMENTS[name] and segs[0].lo is None and segs[0].seek is None and segs[-1].hi is None
    assert all(a.hi == b.lo and b.lo in keyframes for a, b in itertools.pairwise(segs))  # contiguous, at keyframes
    assert all((b.lo - (a.lo or 0)) * plan.time_base >= 1 for a, b in itertools.pairwise(segs))  # at least 1 s each
    with av.open(str(clips / name)) as c:  # every frame PyAV decodes is in exactly one segment
        assert sum(s.frames for s in segs) == plan.frames == len(list(c.decode(video=0)))


def test_edit_list_frames_are_not_counted(tmp_path, checkpoints):
    """An MP4 whose first frames have negative PTS: its edit list trims them (the decoder outputs none of them),
    so the plan counts what PyAV decodes and each segment's worker finds exactly its frames (no warning)."""
    src = make_test_clip(tmp_path / "src.mp4", frames=30, gop=10, bframes=2, audio=False)
    clip = tmp_path / "trimmed.mp4"
    with av.open(str(src)) as i, av.open(str(clip), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(video=0):
            if p.dts is not None:
                p.pts, p.dts, p.stream = p.pts - 3 * p.duration, p.dts - 3 * p.duration, s
                o.mux(p)
    plan = plan_input(clip, 0.4)
    with av.open(str(clip)) as c:
        assert sum(p.is_discard for p in c.demux(video=0)) == 3  # (the mov demuxer's flags)
    with av.open(str(clip)) as c:
        assert plan.frames == sum(s.frames for s in plan.segments) == len(list(c.decode(video=0))) == 27
    assert len(plan.segments) == 2
    _segments_in_process(clip, plan, WorkerConfig(str(checkpoints["style"])), tmp_path)  # asserts each count


def test_plan_without_keyframes_to_cut_at(tmp_path):
    """One keyframe (x264's default keyint 250 > 60 frames): one segment, the whole file, no seek."""
    clip = make_test_clip(tmp_path / "one.mp4", frames=60, audio=False)
    (seg,) = plan_input(clip, 1.0).segments
    assert (seg.lo, seg.hi, seg.seek, seg.frames) == (None, None, None, 60)
    # keyframes every 0.4 s, 1.3 s of video: a cut at 1.2 s would leave a 0.1 s tail, which joins the segment before
    clip = make_test_clip(tmp_path / "short.mp4", frames=33, gop=10, audio=False)
    plan = plan_input(clip, 1.0)
    assert [s.frames for s in plan.segments] == [33]


@pytest.mark.parametrize("seconds", [1e308, 1e20, 2.5])
def test_segments_longer_than_the_input(clips, seconds):
    """--segment-seconds longer than the input (2.5 s here: its frames span 2.36 s), even 1e308 (no int for it in
    stream ticks): one segment, every frame."""
    (seg,) = plan_input(clips / "b.mkv", seconds).segments
    with av.open(str(clips / "b.mkv")) as c:
        assert (seg.lo, seg.hi, seg.seek, seg.frames) == (None, None, None, len(list(c.decode(video=0))))


def test_plan_from_the_manifest_must_be_one_plan_input_makes(clips):
    """What the manifest gives back is checked (the driver probes again on ValueError/TypeError/KeyError)."""
    from stylize_video.pipeline.batch.segments import InputPlan

    good = plan_input(clips / "a.mp4", 1.0).to_dict()
    assert InputPlan.from_dict(good).to_dict() == good
    rows = good["segments"]
    for bad in ({"segments": []}, {"segments": rows[:1]}, {"segments": rows[1:]}, {"segments": [rows[0], rows[2]]},
                {"segments": [[*rows[0][:3], "7"], *rows[1:]]}, {"frames": None}, {"frames": good["frames"] + 1},
                {"stream_index": "x"}, {"time_base": "0"}, {"duration_s": None}):
        with pytest.raises((ValueError, TypeError, ZeroDivisionError)):
            InputPlan.from_dict({**good, **bad})


def test_deinterlaced_input_is_not_cut(tmp_path):
    """bwdif looks at the neighbouring frames: a segment's first and last frame would lack one, so an interlaced
    input (deinterlaced by default) stays one segment; with --deinterlace off it is cut like any other."""
    clip = make_test_clip(tmp_path / "i.mkv", frames=60, gop=10, interlaced=True, audio=False)
    assert len(plan_input(clip, 1.0).segments) == 1
    off = FileSourceOptions(deinterlace=DeinterlaceOptions("off"))
    assert len(plan_input(clip, 1.0, off).segments) == 2


def test_plan_of_an_unreadable_input_is_one_error_line(tmp_path):
    (tmp_path / "x.mp4").write_text("not a video")
    with pytest.raises(StylizeError, match="is not a readable video"):
        plan_input(tmp_path / "x.mp4", 1.0)
    with pytest.raises(StylizeError, match="input not found"):
        plan_input(tmp_path / "missing.mp4", 1.0)


def test_decode_timestamps_are_x264s(tmp_path):
    """The join's DTS rule gives, for one x264 run with B-frames and irregular timestamps, x264's own DTS."""
    tb = Fraction(1, 150)
    out = av.open(str(tmp_path / "x.nut"), "w", format="nut")
    s = out.add_stream("libx264", rate=25, options={"preset": "medium", "crf": "20"})
    s.width, s.height, s.pix_fmt, s.time_base, s.codec_context.time_base = 64, 48, "yuv420p", tb, tb
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), np.uint8)
    got = []
    for i, t in enumerate(np.cumsum([0, 3, 9, 6, 4, 12, 5, 3, 9, 6, 4, 12, 5, 7, 8, 3])):
        f = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, 1), format="rgb24").reformat(format="yuv420p")
        f.pts, f.time_base = int(t), tb
        got += [(p.pts, p.dts) for p in s.encode(f)]
    got += [(p.pts, p.dts) for p in s.encode(None)]
    out.close()
    pts, dts = [p for p, _ in got], [d for _, d in got]
    assert pts != sorted(pts)  # B-frames: reordered
    assert decode_timestamps(pts, encoder_delay({"pts": pts, "dts": dts})) == dts
    # rebuilt without the encoder's delay, DTS are still valid: increasing, never after the PTS
    minimal = decode_timestamps(pts)
    assert all(a < b for a, b in itertools.pairwise(minimal)) and all(d <= p for d, p in zip(minimal, pts))


def test_decode_timestamps_rules():
    dts = decode_timestamps([0, 30, 10, 20, 60, 40, 50])
    assert all(a < b for a, b in itertools.pairwise(dts)) and all(d <= p for d, p in zip(dts, [0, 30, 10, 20, 60, 40, 50]))
    assert decode_timestamps([0, 1, 2]) == [0, 1, 2]
    with pytest.raises(StylizeError, match="share a timestamp"):
        decode_timestamps([0, 1, 1])


def _segments_in_process(src, plan, config, folder):
    worker = SegmentWorker(config, "cpu")
    paths = []
    for seg in plan.segments:
        path = folder / f"{seg.index}.nut"
        result = worker.run(SegmentTask(str(seg.index), str(src), seg.index, seg.lo, seg.hi, seg.seek, seg.frames,
                                        str(path), config.encoder))
        assert result.frames == seg.frames
        paths.append(path)
    worker.close()
    return paths


def test_lossy_encoder_with_b_frames(clips, checkpoints, tmp_path, kit, vid):
    """x264 medium (B-frames) on the VFR clip: same frames, timestamps and audio as one run; valid DTS."""
    src, enc = clips / "a.mp4", ["--codec", "libx264", "--preset", "medium", "--crf", "18"]
    single = tmp_path / "single.mp4"
    assert stylize_video([str(src), str(single), "--checkpoint", str(checkpoints["style"]), "--quiet", *enc]) == 0
    config = WorkerConfig(str(checkpoints["style"]), encoder=EncoderOptions("libx264", crf=18, preset="medium"))
    plan = plan_input(src, 1.0)
    joined = tmp_path / "joined.mp4"
    join_segments(src, _segments_in_process(src, plan, config, tmp_path), joined, config.encoder, JoinOptions())
    a, b = kit.video_of(joined), kit.video_of(single)
    assert [f[:3] for f in a["frames"]] == [f[:3] for f in b["frames"]] and a["audio"] == b["audio"]
    for x, y in zip(a["frames"], b["frames"]):  # lossy: each segment starts its own GOP
        ya, yb = (np.frombuffer(p[0], np.uint8).astype(np.float64) for p in (x[3], y[3]))
        assert vid.psnr(ya, yb, 255) > 38
    packets = _packets(joined)
    assert any(p != d for p, d, _ in packets)  # B-frames in the output
    dts = [d for _, d, _ in packets]
    assert all(x < y for x, y in itertools.pairwise(dts)) and all(d <= p for p, d, _ in packets)
    assert dts == [d for _, d, _ in _packets(single)]  # the DTS x264 gave the single run
    assert sum(k for *_, k in packets) >= len(plan.segments)  # each segment opens with a keyframe


def test_ffv1_10bit_is_pixel_exact_with_colour_tags(checkpoints, tmp_path, kit):
    """FFV1 is lossless at any bit depth (libx264 --crf 0 is lossless at 8 bits only): a 10-bit BT.2020 input
    joins to the same 10-bit pixels as one run. FFV1 carries no colour tags in its bitstream and NUT none in its
    header: the join tags them."""
    src = make_test_clip(tmp_path / "ten.mkv", frames=50, gop=10, pix_fmt="yuv420p10le", colorspace="bt2020",
                         audio=False)
    single = tmp_path / "single.mkv"
    assert stylize_video([str(src), str(single), "--checkpoint", str(checkpoints["style"]), "--quiet",
                          "--codec", "ffv1"]) == 0
    config = WorkerConfig(str(checkpoints["style"]), encoder=EncoderOptions("ffv1"))
    plan = plan_input(src, 1.0)
    assert len(plan.segments) == 2
    joined = tmp_path / "joined.mkv"
    join_segments(src, _segments_in_process(src, plan, config, tmp_path), joined, config.encoder, JoinOptions())
    kit.exact(joined, single)  # pixels, timestamps, colour tags
    with av.open(str(joined)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt, cc.colorspace) == ("ffv1", "yuv420p10le", 9)  # 10 bits and BT.2020 kept


def test_segment_settings_follow_what_changes_the_bits(checkpoints, tmp_path):
    model = tmp_path / "m.pth"
    model.write_bytes(checkpoints["style"].read_bytes())
    base = WorkerConfig(str(model), encoder=EncoderOptions("libx264", crf=0))
    key = segment_settings(base)
    assert segment_settings(dataclasses.replace(base, threads=1, queue_size=9)) == key  # speed only
    assert segment_settings(dataclasses.replace(base, encoder=EncoderOptions("libx264", crf=1))) != key
    assert segment_settings(dataclasses.replace(base, device="cuda")) != key  # fp16 on CUDA
    assert segment_settings(dataclasses.replace(base, apply_rotation=True)) != key
    model.write_bytes(checkpoints["sr"].read_bytes())  # same path, other model
    assert segment_settings(base) != key
