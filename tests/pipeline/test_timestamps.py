"""Timestamps of real-world inputs: joined MPEG-TS recordings (per-stream discontinuities; long and short
recordings, a pixel-format change at the join), damaged PES timestamps (one, or several in a row: not a
discontinuity), a negative start into MP4, a truncated download, ``--start`` where a seek lands past the
keyframe (MPEG-TS) and on inputs that cannot seek. Inputs are built here with PyAV; the right value is FFmpeg's
default decode of the same file."""

from __future__ import annotations

import itertools
import json
import os
from fractions import Fraction

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_test_clip

TB = Fraction(1, 90000)


def _run(capsys, src, out, model, *extra) -> tuple[int, str, dict]:
    stats = out.with_name(out.name + ".json")
    rc = main([str(src), str(out), "--onnx", str(model), "--preset", "ultrafast", "--json", str(stats), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err, (json.loads(stats.read_text()) if stats.exists() else {})


def _times(path, kind: str = "video") -> list[Fraction]:
    """Presentation times (s): decoded video frames, or audio packets, as a default decode / demux gives them."""
    with av.open(str(path)) as c:
        if kind == "video":
            return [f.pts * f.time_base for f in c.decode(video=0)]
        return [p.pts * p.time_base for p in c.demux(audio=0) if p.size]


def _ts_shifted(src, dst, seconds: int) -> None:
    """``src`` (MPEG-TS) copied with every timestamp moved by ``seconds``; the muxer interleaves as it does."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format="mpegts") as o:
        outs = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if not p.size:
                continue
            shift = round(seconds / p.time_base)
            p.pts, p.dts = p.pts + shift, p.dts + shift
            p.stream = outs[p.stream.index]
            o.mux(p)


@pytest.fixture(scope="module")
def clip_ts(tmp_path_factory):
    """1 s of H.264 (B-frames: PES headers carry a DTS) and AAC in MPEG-TS, starting at 1.4 s as ffmpeg writes."""
    return make_test_clip(tmp_path_factory.mktemp("ts") / "clip.ts", frames=24, bframes=2, seed=5)


def test_joined_recordings_keep_every_frame_and_the_streams_in_step(tmp_path, capsys, vid, negate_onnx, clip_ts):
    # `cat a.ts b.ts`, b starting 100 s later: the TS muxer writes audio ahead of video, so b's first audio packets
    # come before a's last video packets. One offset for all streams gave those the new offset (a frame re-timed,
    # the next one dropped as out of order): each stream must detect its own jump.
    later = tmp_path / "later.ts"
    _ts_shifted(clip_ts, later, 100)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(clip_ts.read_bytes() + later.read_bytes())
    ref = vid.reference(joined)
    assert len(ref) == 48
    first = _times(clip_ts)
    rc, err, stats = _run(capsys, joined, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and err.count("timestamps jump by +") == 1, err
    got = _times(tmp_path / "out.mkv")
    shift = got[0] - first[0]  # (Matroska starts the file at 0)
    assert len(got) == stats["frames"] == 48
    kinds = {k for counts in stats["damage"].values() for k in counts}
    assert kinds <= {"corrupt_packets"}, stats["damage"]  # (the continuity counters restart at the join)
    assert [t - shift for t in got[:24]] == first  # the first recording as it was, its last frame included
    assert all(b > a for a, b in itertools.pairwise(got))
    # the second recording continues after the first with its audio where it was against its video
    audio = [t - shift for t in _times(tmp_path / "out.mkv", "audio")]
    audio_in = _times(clip_ts, "audio")
    assert len(audio) == 2 * len(audio_in)
    second_video, second_audio = got[24] - shift, audio[len(audio_in)]
    frame, ms = Fraction(1024, 48000), Fraction(1, 1000)  # one AAC packet; Matroska's time base
    assert all(abs(a - b) <= ms for a, b in zip(audio, audio_in))
    assert audio_in[-1] < second_audio <= audio_in[-1] + 2 * frame
    assert abs((second_video - second_audio) - (first[0] - audio_in[0])) <= ms
    assert second_video > first[-1]


def _pes_timestamp_offsets(data: bytes, pid: int, dts: bool = True) -> list[tuple[int, int]]:
    """(offset of the PTS field, offset of the DTS field) of each PES of ``pid`` that carries both; with
    ``dts=False``, of each PES that carries a PTS (the DTS offset then only where it has one)."""
    found = []
    for at in range(0, len(data) - 187, 188):
        if ((data[at + 1] & 0x1F) << 8 | data[at + 2]) != pid or not data[at + 1] & 0x40:
            continue
        p = at + 4 + (data[at + 4] + 1 if data[at + 3] & 0x20 else 0)  # after the adaptation field
        if data[p:p + 3] == b"\0\0\1" and data[p + 7] & (0xC0 if dts else 0x80) == (0xC0 if dts else 0x80):
            found.append((p + 9, p + 14))
    return found


def _add_to_pts(data: bytearray, at: int, ticks: int) -> None:
    """Add ``ticks`` (90 kHz) to the 33-bit PES timestamp whose 5 bytes start at ``at`` (marker bits kept)."""
    b = data
    v = ((b[at] >> 1) & 7) << 30 | b[at + 1] << 22 | (b[at + 2] >> 1) << 15 | b[at + 3] << 7 | b[at + 4] >> 1
    v = (v + ticks) % (1 << 33)
    b[at] = (b[at] & 0xF1) | ((v >> 30) & 7) << 1
    b[at + 1], b[at + 2] = (v >> 22) & 0xFF, ((v >> 15) & 0x7F) << 1 | 1
    b[at + 3], b[at + 4] = (v >> 7) & 0xFF, (v & 0x7F) << 1 | 1


def test_one_damaged_dts_is_repaired_not_a_discontinuity(tmp_path, capsys, vid, negate_onnx, clip_ts):
    # A bit error in one PES header: its DTS jumps by 2^30 ticks (3.3 hours), its PTS is intact. That is no
    # discontinuity (the next packet goes on from before): nothing may be shifted or re-timed.
    with av.open(str(clip_ts)) as c:
        pid = c.streams.video[0].id
    data = bytearray(clip_ts.read_bytes())
    _, dts_at = _pes_timestamp_offsets(data, pid)[10]
    data[dts_at] ^= 0x04  # DTS bit 31 (PES timestamp byte 0 holds bits 32..30 in bits 3..1)
    bad = tmp_path / "bad.ts"
    bad.write_bytes(bytes(data))
    with av.open(str(bad)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.size]
    assert sum(abs(b - a) * TB > 10 for a, b in itertools.pairwise(dts)) == 2  # the damaged DTS: out and back
    want = vid.in_order(vid.reference(bad))
    assert len(want) == 24
    rc, err, stats = _run(capsys, bad, tmp_path / "out.mp4", negate_onnx)
    assert rc == 0 and "jump" not in err, err
    got = _times(tmp_path / "out.mp4")
    assert [t - got[0] for t in got] == [t - want[0] for t in want]
    assert stats["damage"] == {"#0 video": {"bad_timestamps": 1}}
    assert sum("warning:" in line and "damaged timestamp" in line for line in err.splitlines()) == 1


@pytest.mark.parametrize("extra", [[], ["--no-audio"]])
def test_a_negative_start_into_mp4_is_moved_to_zero(tmp_path, capsys, vid, negate_onnx, clip_ts, extra):
    # An MPEG-TS whose 33-bit PTS wraps 0.5 s in: FFmpeg hands out negative timestamps for the first frames.
    # MP4 keeps negative timestamps and its edit list then hides those frames from every player.
    wrap = tmp_path / "wrap.ts"
    with av.open(str(clip_ts)) as c:
        start = c.streams.video[0].start_time * TB
    _ts_shifted(clip_ts, wrap, round((1 << 33) * TB - start - Fraction(1, 2)))
    first = _times(wrap)
    assert len(first) == 24 and first[0] < 0 < first[-1]
    rc, err, stats = _run(capsys, wrap, tmp_path / "out.mp4", negate_onnx, *extra)
    assert rc == 0, err
    got = _times(tmp_path / "out.mp4")  # the default decode, edit list applied
    assert len(got) == stats["frames"] == 24 and got[0] >= 0
    assert [t - got[0] for t in got] == [t - first[0] for t in first]
    if not extra:  # the audio moved with the video: it starts at 0 now, as far from the video as before
        audio, audio_in = _times(tmp_path / "out.mp4", "audio"), _times(wrap, "audio")
        assert audio[0] == 0 and abs((got[0] - audio[0]) - (first[0] - audio_in[0])) <= Fraction(1, 1000)


def test_a_truncated_download_is_reported(tmp_path, capsys, vid, negate_onnx):
    clip = make_test_clip(tmp_path / "c.mp4", frames=24, audio=False)
    fast = tmp_path / "fast.mp4"
    with av.open(str(clip)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(video=0):
            if p.size:
                p.stream = out
                o.mux(p)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[:int(fast.stat().st_size * 0.6)])  # the index is at the front
    decoded = len(vid.reference(cut))
    assert 0 < decoded < 24
    rc, err, stats = _run(capsys, cut, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and stats["frames"] == decoded
    assert err.count("truncated?") == 1 and "of the 0.96 s its header gives" in err, err
    assert stats["damage"]["#0 video"]["frames_missing"] == 24 - decoded


def test_start_on_an_input_that_cannot_seek_decodes_from_the_beginning(tmp_path, capsys, negate_onnx):
    clip = make_test_clip(tmp_path / "c.mp4", frames=24, audio=False)
    raw = tmp_path / "c.h264"  # an elementary stream: no timestamps, no index, av_seek_frame refuses
    with av.open(str(clip)) as i, av.open(str(raw), "w", format="h264") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(video=0):
            if p.size:
                p.stream = out
                o.mux(p)
    rc, err, stats = _run(capsys, raw, tmp_path / "out.mkv", negate_onnx, "--start", "0.5")
    assert rc == 0 and "cannot seek" in err and "decoding from its start up to --start 0.5" in err, err
    got = _times(tmp_path / "out.mkv")
    # frames without timestamps are numbered at the nominal 25 fps: those from 0.5 s on are kept
    assert stats["frames"] == len(got) == 11


@pytest.fixture(scope="module")
def clip_3s(tmp_path_factory):
    """3 s of H.264 without B-frames (PES headers carry a PTS only) and AAC in MPEG-TS."""
    return make_test_clip(tmp_path_factory.mktemp("ts3") / "clip.ts", frames=75, seed=4)


@pytest.mark.parametrize(("frames", "copies"), [(12, 3), (50, 2)])
def test_short_joined_recordings_starting_at_the_same_time_keep_every_frame(tmp_path, capsys, vid, negate_onnx,
                                                                            frames, copies):
    # `cat a.ts a.ts` of recordings shorter than the 10 s jump threshold: the second starts 0.5 s / 2 s *before*
    # the first ends. ffmpeg takes a DTS going back by more than 0.1 s for a discontinuity in MPEG-TS; without
    # that, the whole second recording was dropped as out of order.
    part = make_test_clip(tmp_path / "part.ts", frames=frames, seed=frames)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * copies)
    assert len(vid.reference(joined)) == copies * frames
    rc, err, stats = _run(capsys, joined, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and err.count("timestamps jump by -") == 1, err
    got, first = _times(tmp_path / "out.mkv"), _times(part)
    assert len(got) == stats["frames"] == copies * frames and all(b > a for a, b in itertools.pairwise(got))
    audio, audio_in = _times(tmp_path / "out.mkv", "audio"), _times(part, "audio")
    assert len(audio) == copies * len(audio_in)
    ms = Fraction(1, 1000)  # Matroska's time base
    for k in range(copies):  # each recording as it was (frame steps, audio against video), after the previous one
        video_k, audio_k = got[k * frames:(k + 1) * frames], audio[k * len(audio_in):(k + 1) * len(audio_in)]
        assert all(abs((b - video_k[0]) - (t - first[0])) <= ms for b, t in zip(video_k, first))
        assert abs((video_k[0] - audio_k[0]) - (first[0] - audio_in[0])) <= ms
    assert stats["damage"] in ({}, {"#0 video": {"corrupt_packets": copies - 1}})  # (continuity counters restart)


def test_a_pixel_format_change_at_a_short_join_keeps_every_frame(tmp_path, capsys, vid, negate_onnx):
    # 0.5 s of 8-bit 4:2:0, then 0.5 s of 10-bit 4:4:4 starting at the same PTS (a camera switching modes).
    a = make_test_clip(tmp_path / "a.ts", frames=12, audio=False)
    b = make_test_clip(tmp_path / "b.ts", frames=12, audio=False, pix_fmt="yuv444p10le", seed=3)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    assert [f.format.name for f in vid.reference(joined)] == ["yuv420p"] * 12 + ["yuv444p10le"] * 12
    rc, err, stats = _run(capsys, joined, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and "timestamps jump by -0.5 s" in err and "from yuv420p to yuv444p10le" in err, err
    got = _times(tmp_path / "out.mkv")
    assert len(got) == stats["frames"] == 24
    assert [b - a for a, b in itertools.pairwise(got)] == [Fraction(1, 25)] * 23


@pytest.mark.parametrize("damaged", [2, 3, 40])
def test_several_damaged_pes_timestamps_in_a_row_are_repaired_in_step(tmp_path, capsys, vid, negate_onnx, clip_3s,
                                                                      damaged):
    # Consecutive video PES headers whose PTS is 1000 s off continue from each other like a jump, but no other
    # stream goes there and the video comes back: damage. Every frame is kept and the video stays in step with
    # the audio (it was 0.107 s late for the rest of the file). 40 frames (1.6 s) outlast the wait for another
    # stream: that stretch is placed where the video was and counted as damage when the video comes back.
    with av.open(str(clip_3s)) as c:
        pid = c.streams.video[0].id
    data = bytearray(clip_3s.read_bytes())
    for pts_at, _ in _pes_timestamp_offsets(data, pid, dts=False)[20:20 + damaged]:
        _add_to_pts(data, pts_at, 1000 * 90000)
    bad = tmp_path / "bad.ts"
    bad.write_bytes(bytes(data))
    assert len(vid.reference(bad)) == 75
    rc, err, stats = _run(capsys, bad, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and sum("warning:" in line and "damaged timestamp" in line for line in err.splitlines()) == 1, err
    assert ("jump" in err) == (damaged == 40), err
    got, audio = _times(tmp_path / "out.mkv"), _times(tmp_path / "out.mkv", "audio")
    want, audio_in = _times(clip_3s), _times(clip_3s, "audio")
    assert len(got) == stats["frames"] == 75 and len(audio) == len(audio_in)
    ms = Fraction(1, 1000)
    assert all(abs((g - audio[0]) - (w - audio_in[0])) <= ms for g, w in zip(got, want))
    counts = {"bad_timestamps": damaged} | ({} if damaged == 40 else {"frames_retimed": damaged})
    assert stats["damage"] == {"#0 video": counts}


@pytest.mark.parametrize(("ext", "start"), [("ts", 0.5), ("ts", 3), ("mkv", 3)])
def test_start_where_keyframes_are_far_apart_keeps_every_frame_from_it(tmp_path, capsys, vid, negate_onnx, ext,
                                                                      start):
    # Keyframes 10 s apart (12 s at 5 fps; screen recordings): an MPEG-TS seek lands after the keyframe before
    # --start and the frames up to the next keyframe were lost without a word. Matroska seeks by its index.
    src = make_test_clip(tmp_path / f"c.{ext}", frames=60, fps=5, gop=50)
    assert sum(f.key_frame for f in vid.reference(src)) == 2
    origin = _start(src)
    want = [t for t in _times(src) if t - origin >= start]
    rc, err, stats = _run(capsys, src, tmp_path / "out.mkv", negate_onnx, "--start", str(start))
    assert rc == 0, err
    got = _times(tmp_path / "out.mkv")
    assert len(got) == stats["frames"] == len(want) and got[0] - want[0] == got[-1] - want[-1]
    audio = _times(tmp_path / "out.mkv", "audio")  # audio packets starting from --start on
    assert len(audio) == sum(1 for t in _times(src, "audio") if t - origin >= start)


def _start(path) -> Fraction:
    """The input's start (FFmpeg's start_time), seconds: where --start and --duration count from."""
    with av.open(str(path)) as c:
        return Fraction(c.start_time, 1_000_000)


def test_start_and_duration_count_from_the_input_start(tmp_path, capsys, negate_onnx, clip_ts):
    # A broadcast recording starts anywhere (here at 1000 s): --duration 0.4 gave "no decodable video frames" and
    # --start 0.2 kept every frame, both counted from 0. `ffmpeg -ss/-t` count from the input's start.
    late = tmp_path / "late.ts"
    _ts_shifted(clip_ts, late, 1000)
    origin = _start(late)
    want = [t for t in _times(late) if Fraction(1, 5) <= t - origin < Fraction(3, 5)]
    rc, err, stats = _run(capsys, late, tmp_path / "out.mkv", negate_onnx, "--start", "0.2", "--duration", "0.4")
    assert rc == 0, err
    got = _times(tmp_path / "out.mkv")
    assert len(got) == stats["frames"] == len(want) == 10 and got[-1] - got[0] == want[-1] - want[0]
    # and the output starts at 0 from there (as `ffmpeg -ss`): the input's time origin + 0.2 s is written as 0
    assert abs(got[0] - (want[0] - origin - Fraction(1, 5))) <= Fraction(1, 1000), (got[0], want[0], origin)


def test_start_on_stdin_decodes_from_its_start(tmp_path, capsys, vid, negate_onnx, clip_ts):
    # A pipe cannot seek, nor be opened again: read from its start, frames before --start dropped, with a note.
    saved = os.dup(0)
    try:
        with open(clip_ts, "rb") as f:
            os.dup2(f.fileno(), 0)
        rc, err, stats = _run(capsys, "-", tmp_path / "out.mkv", negate_onnx, "--start", "0.5")
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert rc == 0 and "stdin cannot seek: decoding from its start up to --start 0.5" in err, err
    want = [t for t in _times(clip_ts) if t - _start(clip_ts) >= Fraction(1, 2)]
    got = _times(tmp_path / "out.mkv")
    assert len(got) == stats["frames"] == len(want) >= 10 and got[-1] - got[0] == want[-1] - want[0]
