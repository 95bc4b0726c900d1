"""End to end through stylize_video.pipeline.job.stylize_file on synthetic clips: timing, audio, colour, geometry."""

from __future__ import annotations

import warnings

import av
import numpy as np
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends import load_backend
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.io.source import FileSourceOptions
from stylize_video.pipeline.job import JobOptions, stylize_file
from stylize_video.pipeline.synth import corrupt_clip, make_test_clip

LOSSLESS = EncoderOptions(crf=0, preset="ultrafast")


def _opts(**kw) -> JobOptions:
    kw.setdefault("encoder", EncoderOptions(preset="ultrafast"))
    return JobOptions(progress=False, **kw)


def test_vfr_pts_audio_and_duration_preserved(tmp_path, vid, checkpoints):
    src = make_test_clip(tmp_path / "vfr.mp4", vfr=True)
    dst = tmp_path / "out.mp4"
    with load_backend(checkpoints["style"], device="cpu", precision="fp32") as b:
        stats = stylize_file(src, dst, b, _opts())
    assert stats.frames == 12 and stats.output == str(dst)
    assert vid.pts(dst) == vid.pts(src)  # every timestamp, exactly
    assert vid.audio(dst) == vid.audio(src)  # packet for packet, bit-identical
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert abs(a.duration - b.duration) < 5_000  # microseconds
        assert b.streams.audio[0].codec_context.name == "aac"
    assert not list(tmp_path.glob(".*inprogress"))


@pytest.mark.parametrize(("space", "rng", "tags"), [("bt601", "tv", (6, 1, 6, 6)), ("bt709", "tv", (1, 1, 1, 1)),
                                                    ("bt601", "pc", (6, 2, 6, 6)), ("bt709", "pc", (1, 2, 1, 1))])
def test_colour_tags_carried(tmp_path, identity_backend, space, rng, tags):
    src = make_test_clip(tmp_path / "c.mkv", colorspace=space, color_range=rng, audio=False, frames=3)
    dst = tmp_path / "c_out.mkv"
    stylize_file(src, dst, identity_backend, _opts())
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.colorspace), int(cc.color_range), int(cc.color_primaries), int(cc.color_trc)) == tags


@pytest.mark.parametrize("space", ["bt601", "bt709"])
@pytest.mark.parametrize("rng", ["tv", "pc"])
def test_identity_round_trip_psnr(tmp_path, vid, identity_backend, space, rng):
    src = make_test_clip(tmp_path / "rt.mkv", colorspace=space, color_range=rng, audio=False, frames=4)
    dst = tmp_path / "rt_out.mkv"
    stylize_file(src, dst, identity_backend, _opts(encoder=LOSSLESS))
    a, b = vid.frames(src), vid.frames(dst)
    assert len(a) == len(b) == 4
    for fa, fb in zip(a, b):
        for pa, pb in zip(vid.planes(fa), vid.planes(fb)):
            assert vid.psnr(pa, pb, 255) >= 40


def test_ten_bit_in_ten_bit_out(tmp_path, vid, identity_backend):
    src = make_test_clip(tmp_path / "p10.mkv", pix_fmt="yuv420p10le", colorspace="bt2020", audio=False, frames=3)
    dst = tmp_path / "p10_out.mkv"
    stylize_file(src, dst, identity_backend, _opts(encoder=LOSSLESS))
    a, b = vid.frames(src), vid.frames(dst)
    assert b[0].format.name == "yuv420p10le"
    assert min(vid.psnr(x, y, 1023) for x, y in zip(vid.planes(a[0]), vid.planes(b[0]))) >= 40


def test_ten_bit_into_eight_bit_codec_warns(tmp_path, vid, identity_backend):
    src = make_test_clip(tmp_path / "p10.mkv", pix_fmt="yuv420p10le", audio=False, frames=2)
    with pytest.warns(UserWarning, match="cannot write 10-bit"):
        stylize_file(src, tmp_path / "o.mkv", identity_backend, _opts(encoder=EncoderOptions(codec="mpeg4")))
    assert vid.frames(tmp_path / "o.mkv")[0].format.name == "yuv420p"


def test_sr_output_size(tmp_path, vid, checkpoints):
    src = make_test_clip(tmp_path / "s.mp4", width=34, height=26, frames=3)
    with load_backend(checkpoints["sr"], device="cpu", precision="fp32") as b:
        stats = stylize_file(src, tmp_path / "s_out.mp4", b, _opts())
    assert stats.output_size == (68, 52)
    assert [(f.width, f.height) for f in vid.frames(tmp_path / "s_out.mp4")] == [(68, 52)] * 3


def test_rotation_carried_or_applied(tmp_path, vid, identity_backend):
    src = make_test_clip(tmp_path / "r.mp4", rotation=90, audio=False, frames=3)
    stylize_file(src, tmp_path / "keep.mp4", identity_backend, _opts())
    f = vid.frames(tmp_path / "keep.mp4")[0]
    assert (f.rotation, f.width, f.height) == (90, 64, 48)
    stylize_file(src, tmp_path / "applied.mp4", identity_backend, _opts(apply_rotation=True))
    g = vid.frames(tmp_path / "applied.mp4")[0]
    assert (g.rotation, g.width, g.height) == (0, 48, 64)
    # CCW rotation moves the source's top-right corner to the top-left.
    src_rgb = vid.frames(src)[0].to_ndarray(format="rgb24").astype(int)
    out_rgb = g.to_ndarray(format="rgb24").astype(int)
    assert abs(out_rgb[:8, :8] - src_rgb[:8, -8:].transpose(1, 0, 2)[::-1]).mean() < 12


@pytest.mark.parametrize(("w", "h", "fmt"), [(63, 47, "yuv444p"), (66, 50, "yuv420p")])
def test_odd_and_non_multiple_of_four_sizes(tmp_path, vid, checkpoints, w, h, fmt):
    src = make_test_clip(tmp_path / "o.mkv", width=w, height=h, pix_fmt=fmt, audio=False, frames=2)
    with load_backend(checkpoints["style"], device="cpu", precision="fp32") as b:
        stylize_file(src, tmp_path / "o_out.mkv", b, _opts())
    assert {(f.width, f.height) for f in vid.frames(tmp_path / "o_out.mkv")} == {(w, h)}


def test_interlaced_is_deinterlaced_unless_off(tmp_path, identity_backend):
    src = make_test_clip(tmp_path / "i.mkv", interlaced=True, audio=False, frames=4)
    stats = stylize_file(src, tmp_path / "i_out.mkv", identity_backend, _opts())
    assert stats.frames == 4 and stats.deinterlace == "bwdif (frame rate)"
    off = FileSourceOptions(deinterlace=DeinterlaceOptions("off"))
    with pytest.warns(UserWarning, match="interlaced input: frames are processed as decoded"):
        stats = stylize_file(src, tmp_path / "i_off.mkv", identity_backend, _opts(source=off))
    assert stats.frames == 4 and stats.deinterlace is None


def test_start_duration_max_frames(tmp_path, vid, identity_backend):
    src = make_test_clip(tmp_path / "t.mp4", frames=25, fps=25)
    stats = stylize_file(src, tmp_path / "a.mp4", identity_backend,
                         _opts(source=FileSourceOptions(start=0.2, duration=0.4)))
    assert stats.frames == 10
    pts = vid.pts(tmp_path / "a.mp4")  # the output starts at 0: input time 0.2 s is written as 0
    assert float(pts[0]) == pytest.approx(0.0) and float(pts[-1]) == pytest.approx(0.36)
    with av.open(str(tmp_path / "a.mp4")) as c:  # audio cut to the same window (whole packets), moved the same
        times = [float(p.pts * p.time_base) for p in c.demux(audio=0) if p.size]
    assert times and min(times) >= 0 and max(times) < 0.4
    stats = stylize_file(src, tmp_path / "b.mp4", identity_backend, _opts(source=FileSourceOptions(max_frames=5)))
    assert stats.frames == 5 and len(vid.frames(tmp_path / "b.mp4")) == 5


@pytest.mark.parametrize("start", [None, 0.4])
def test_max_frames_cuts_audio_at_the_last_frame(tmp_path, identity_backend, start):
    """The decoder runs frames behind the demuxer: audio packets read meanwhile must not outlast the video."""
    src = make_test_clip(tmp_path / "t.mp4", frames=40, fps=25)
    out = tmp_path / "o.mkv"
    stylize_file(src, out, identity_backend, _opts(source=FileSourceOptions(start=start, max_frames=6)))

    def packets(path, kind):
        with av.open(str(path)) as c:
            return [(float(p.pts * p.time_base), float(p.duration * p.time_base), bytes(p))
                    for p in c.demux(**{kind: 0}) if p.size]

    assert len(packets(out, "video")) == 6
    lo = start - 1e-6 if start else float("-inf")  # (AAC priming: the first packet starts before 0)
    kept = sorted(t for t, _, _ in packets(src, "video") if t >= lo)[:6]
    end = kept[-1] + 1 / 25  # in the input's timeline (Matroska shifts the output's by the AAC priming)
    want = [b for t, _, b in packets(src, "audio") if lo <= t < end]
    assert [b for _, _, b in packets(out, "audio")] == want  # every audio packet that starts in time, no more


def test_no_audio_option_and_containers(tmp_path, vid, identity_backend):
    src = make_test_clip(tmp_path / "m.mp4", frames=3)
    stylize_file(src, tmp_path / "m.mov", identity_backend, _opts(source=FileSourceOptions(copy_audio=False)))
    with av.open(str(tmp_path / "m.mov")) as c:
        assert [s.type for s in c.streams] == ["video"]
    # WebM without --codec: VP9; AAC cannot go into WebM: re-encoded to Opus, with a note
    with pytest.warns(UserWarning, match=r"audio stream #1 \(aac, und\): webm cannot hold aac.*re-encoded to opus"):
        stylize_file(src, tmp_path / "m.webm", identity_backend,
                     _opts(encoder=EncoderOptions(extra={"deadline": "realtime", "cpu-used": "8"})))
    assert len(vid.frames(tmp_path / "m.webm")) == 3
    with av.open(str(tmp_path / "m.webm")) as c:
        assert [s.codec_context.name for s in c.streams] == ["vp9", "opus"]


def test_damaged_packets_are_counted_and_every_decodable_frame_kept(tmp_path, identity_backend):
    src = make_test_clip(tmp_path / "n.mp4", pattern="noise", width=128, height=96, frames=20, audio=False)
    bad = corrupt_clip(src, tmp_path / "bad.mp4", length=2000)
    stats = stylize_file(bad, tmp_path / "bad_out.mp4", identity_backend, _opts())
    with av.open(str(bad)) as c:  # what FFmpeg's default (frame-threaded) decoder returns, errors skipped
        c.streams.video[0].thread_type = "AUTO"
        want = []
        for packet in c.demux(video=0):
            try:
                want += packet.decode()
            except av.error.FFmpegError:
                pass
    assert stats.corrupt_packets >= 1 and stats.frames == len(want) < 20
    assert stats.damage["#0 video"]["decode_errors"] >= 1 and "damaged input: #0 video" in stats.summary()


def test_output_checks_leave_nothing(tmp_path, identity_backend):
    src = make_test_clip(tmp_path / "x.mp4", frames=2)
    (tmp_path / "exists.mp4").write_bytes(b"old")
    with pytest.raises(StylizeError, match="exists; pass --overwrite"):
        stylize_file(src, tmp_path / "exists.mp4", identity_backend, _opts())
    assert (tmp_path / "exists.mp4").read_bytes() == b"old"
    with pytest.raises(StylizeError, match="unknown output container"):
        stylize_file(src, tmp_path / "out.avi2", identity_backend, _opts())
    with pytest.raises(StylizeError, match=r"webm cannot hold h264 \(from --codec libx264\)"):
        stylize_file(src, tmp_path / "out.webm", identity_backend, _opts(encoder=EncoderOptions(codec="libx264")))
    with pytest.raises(StylizeError, match="would overwrite the input"):
        stylize_file(src, src, identity_backend, _opts(overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4", "x.mp4"]


def test_model_failure_mid_run_removes_temp(tmp_path, identity_backend):
    class Boom(type(identity_backend)):
        calls = 0

        def __call__(self, x):
            Boom.calls += 1
            if Boom.calls == 3:
                raise StylizeError("model exploded")
            return super().__call__(x)

    from torch import nn

    src = make_test_clip(tmp_path / "x.mp4", frames=8)
    with pytest.raises(StylizeError, match="model exploded"):
        stylize_file(src, tmp_path / "y.mp4", Boom(nn.Identity(), "cpu", "fp32"), _opts())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


def test_hwdec_without_cuda_falls_back_to_cpu(tmp_path, identity_backend):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the no-GPU fallback; this machine has CUDA")
    src = make_test_clip(tmp_path / "h.mp4", frames=3, audio=False)
    with pytest.warns(UserWarning, match="--hwdec"):
        stats = stylize_file(src, tmp_path / "h_out.mp4", identity_backend, _opts(source=FileSourceOptions(hwdec=True)))
    assert stats.decode_path == "cpu" and stats.frames == 3


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("hwdec", [False, True])
def test_cuda_frame_path_round_trip(tmp_path, vid, hwdec):
    """Pinned buffers, the processor's CUDA stream and events, and (hwdec) NVDEC via DLPack or download."""
    from stylize_video.pipeline.backends.torch import TorchBackend
    from torch import nn

    src = make_test_clip(tmp_path / "g.mkv", width=256, height=144, frames=6, audio=True, vfr=True)
    dst = tmp_path / "g_out.mkv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = stylize_file(src, dst, TorchBackend(nn.Identity(), "cuda", "fp32"),
                             _opts(encoder=LOSSLESS, source=FileSourceOptions(hwdec=hwdec)))
    assert stats.device.startswith("cuda")
    if hwdec:
        assert stats.decode_path in ("nvdec-dlpack", "nvdec-download", "cpu (nvdec fallback)")
    assert vid.pts(dst) == vid.pts(src) and vid.audio(dst) == vid.audio(src)
    for fa, fb in zip(vid.frames(src), vid.frames(dst)):
        for pa, pb in zip(vid.planes(fa), vid.planes(fb)):
            assert vid.psnr(pa, pb, 255) >= 40


def _ts_part(path, w: int, h: int, start: int, n: int = 4, pix_fmt: str = "yuv420p", rgb: tuple | None = None,
             bt709_pc: bool = False) -> bytes:
    """Flat frames (grey levels rising, or ``rgb``: tagged BT.601 limited range, or ``bt709_pc``: BT.709 full
    range) as H.264 in MPEG-TS."""


    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "qp": "0"})
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if rgb is not None:  # tagged (an untagged part would take the range of the part decoded before it)
            s.codec_context.colorspace, s.codec_context.color_range = (1, 2) if bt709_pc else (6, 1)
        for i in range(n):
            level = rgb if rgb is not None else (60 + 30 * i,) * 3
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), level, np.uint8), format="rgb24")
            f = f.reformat(format=pix_fmt, dst_colorspace="itu709" if bt709_pc else "smpte170m",
                           dst_color_range="JPEG" if bt709_pc else "MPEG")
            f.pts = start + i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path.read_bytes()


@pytest.mark.parametrize(("w", "h"), [(96, 64), (48, 32)])
def test_size_change_mid_stream_is_scaled_to_the_first_size(tmp_path, vid, identity_backend, w, h):
    # A live or concatenated stream may change resolution: frames are scaled to the first size, with a warning
    # (before: a larger frame was silently cropped to its corner, a smaller one crashed the copy).
    src = tmp_path / "cat.ts"
    src.write_bytes(_ts_part(tmp_path / "a.ts", 64, 48, 0) + _ts_part(tmp_path / "b.ts", w, h, 4))
    with pytest.warns(UserWarning, match=rf"frame size changed from 64x48 to {w}x{h}"):
        stats = stylize_file(src, tmp_path / "o.mkv", identity_backend, _opts(encoder=LOSSLESS))
    out = vid.frames(tmp_path / "o.mkv")
    assert stats.frames == 8 and {(f.width, f.height) for f in out} == {(64, 48)}
    # flat frames stay flat and keep their level: the whole frame was scaled, not a corner cut out
    last = out[-1].to_ndarray(format="rgb24").astype(int)
    assert last.max() - last.min() <= 2 and abs(last.mean() - 150) <= 3


def test_wall_time_includes_the_encoder_drain(tmp_path, identity_backend):
    # x264 finishes its lookahead and frame threads in close(): the run's clock (and fps) must include it, as a
    # plain decode -> encode's does, or the pipeline looks faster than the encoder alone.
    import time

    from stylize_video.pipeline.io.sink import FileSink
    from stylize_video.pipeline.io.source import FileSource
    from stylize_video.pipeline.job import stylize

    drain_s = 0.5

    class SlowDrain(FileSink):
        def close(self, interrupted=False):
            time.sleep(drain_s)
            return super().close(interrupted)

    src = make_test_clip(tmp_path / "x.mp4", frames=3, audio=False)
    source = FileSource(src)
    try:
        stats = stylize(source, SlowDrain(tmp_path / "y.mp4", EncoderOptions(preset="ultrafast")), identity_backend,
                        _opts())
    finally:
        source.close()
    assert stats.frames == 3 and stats.wall_s >= drain_s and stats.fps <= 3 / drain_s
    assert stats.stage_s["encode"] >= drain_s  # the drain is encoder work


def test_pixel_format_change_mid_stream_is_converted_to_the_first_format(tmp_path, vid, identity_backend):
    # 4:2:0 BT.601 limited range, then 4:4:4 BT.709 full range (joined recordings): the later frames are converted
    # to the first format with both matrices stated (before: the run ended after the work, nothing kept).
    src = tmp_path / "cat.ts"
    colour = (200, 60, 100)
    src.write_bytes(_ts_part(tmp_path / "a.ts", 64, 48, 0, rgb=colour)
                    + _ts_part(tmp_path / "b.ts", 64, 48, 4, pix_fmt="yuv444p", rgb=colour, bt709_pc=True))
    assert [f.format.name for f in vid.frames(src)] == ["yuv420p"] * 4 + ["yuvj444p"] * 4  # (j: full range)
    with pytest.warns(UserWarning, match="the pixel format changes mid-stream from yuv420p to yuvj444p"):
        stats = stylize_file(src, tmp_path / "o.mkv", identity_backend, _opts(encoder=LOSSLESS))
    out = vid.frames(tmp_path / "o.mkv")
    assert stats.frames == 8 and {f.format.name for f in out} == {"yuv420p"}
    # the same colour before and after the change (the output is tagged BT.601 limited range, as the first part):
    # limited-range rounding moves it by a few levels; either matrix or range taken wrong moves it by 10 or more
    means = [f.reformat(format="rgb24", src_colorspace="smpte170m", src_color_range="MPEG").to_ndarray()
             .reshape(-1, 3).mean(0) for f in out]
    assert all(np.abs(m - colour).max() <= 5 for m in means), means
    assert np.abs(means[-1] - means[0]).max() <= 2, means
