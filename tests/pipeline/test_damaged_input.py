"""Damaged input: frames out of time order, corrupt-flagged packets, streams appearing mid-file, pass-through
packets the muxer refuses. Each input is built here with PyAV; the right value is what FFmpeg's default
decoder returns for the same file (``vid.reference``)."""

from __future__ import annotations

import contextlib
import json
from fractions import Fraction

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.decode import streams_added
from stylize_video.pipeline.synth import make_test_clip


def _run(capsys, src, out, model, *extra) -> tuple[int, str, dict]:
    stats = out.with_name(out.name + ".json")
    rc = main([str(src), str(out), "--onnx", str(model), "--preset", "ultrafast",
               "--json", str(stats), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err, (json.loads(stats.read_text()) if stats.exists() else {})


def _times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        return [f.pts * f.time_base for f in c.decode(video=0)]


def _remux(src, dst, fmt: str, edit) -> None:
    """Copy ``src``'s packets into ``dst`` (container ``fmt``), ``edit(kind, index, packet)`` changing them first."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format=fmt) as o:
        outs = {s.index: o.add_stream_from_template(s) for s in i.streams}
        count = {"video": 0, "audio": 0}
        for p in i.demux():
            if not p.size:
                continue
            edit(p.stream.type, count[p.stream.type], p)
            count[p.stream.type] += 1
            p.stream = outs[p.stream.index]
            o.mux(p)


def test_frames_whose_timestamps_go_back_are_dropped_counted_and_the_file_finished(tmp_path, capsys, vid,
                                                                                  negate_onnx):
    # Broadcast-style damage: frame 5 carries frame 2's PTS (backwards), frame 8 frame 7's (a repeat). The DTS
    # stay in order, so the muxer that built the file took them; the decoder hands the frames out as they are.
    clip = make_test_clip(tmp_path / "c.mkv", frames=12, audio=False)
    with av.open(str(clip)) as c:
        pts = [p.pts for p in c.demux(video=0) if p.size]
    bad = tmp_path / "bad.ts"
    stolen = {5: 2, 8: 7}

    def edit(kind, n, p):
        p.pts, p.dts = pts[stolen.get(n, n)], n  # DTS in ms: far below every PTS, in order

    _remux(clip, bad, "mpegts", edit)
    ref = vid.reference(bad)
    assert len(ref) == 12 and len(vid.in_order(ref)) == 10  # the input really is damaged so
    rc, err, stats = _run(capsys, bad, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0, err
    kept = vid.in_order(ref)
    got = _times(tmp_path / "out.mkv")
    assert [round(t - got[0], 3) for t in got] == [round(t - kept[0], 3) for t in kept]
    assert err.count("warning:") == 1 and "does not follow the previous frame's" in err  # warned once
    assert stats["frames"] == 10 and stats["damage"] == {"#0 video": {"frames_dropped": 2}}


def _lose_ts_packet(ts: bytes, pid: int, nth: int) -> bytes:
    """``ts`` without the ``nth`` TS packet of ``pid`` that carries payload but starts no PES: a continuity
    error as a broadcast recording has after one lost packet (the frame it belonged to is damaged)."""
    seen = 0
    for at in range(0, len(ts) - 187, 188):
        assert ts[at] == 0x47
        if ((ts[at + 1] & 0x1F) << 8 | ts[at + 2]) != pid or ts[at + 1] & 0x40 or not ts[at + 3] & 0x10:
            continue
        seen += 1
        if seen == nth:
            return ts[:at] + ts[at + 188:]
    raise AssertionError("no such TS packet")


def test_continuity_error_in_mpegts_keeps_every_frame_ffmpeg_decodes(tmp_path, capsys, vid, negate_onnx):
    clip = make_test_clip(tmp_path / "c.ts", frames=12, width=128, height=96, pattern="noise", audio=False)
    with av.open(str(clip)) as c:
        pid = c.streams.video[0].id
    bad = tmp_path / "cc.ts"
    bad.write_bytes(_lose_ts_packet(clip.read_bytes(), pid, 100))
    ref = vid.reference(bad)
    # FFmpeg decodes all 12 frames, one of them flagged corrupt (concealed); dropping it lost a frame
    assert len(ref) == 12 and sum(f.is_corrupt for f in ref) == 1
    rc, err, stats = _run(capsys, bad, tmp_path / "out.mp4", negate_onnx)
    assert rc == 0, err
    assert stats["frames"] == len(vid.frames(tmp_path / "out.mp4")) == 12
    assert stats["damage"]["#0 video"]["corrupt_frames"] == 1
    assert "damaged input: #0 video: " in err and "1 frame decoded with errors (kept)" in err


def _ts_with_a_stream_appearing(tmp_path, audio: bool):
    """An MPEG-TS where a bit error turned the PID of a late video packet that starts a PES (0x100) into an
    unused one (0x102): the demuxer, past its header scan, takes it for a new stream appearing mid-file
    (and the frame it started is lost)."""
    clip = make_test_clip(tmp_path / "c.ts", frames=48, audio=audio)
    with av.open(str(clip)) as c:
        pid = c.streams.video[0].id
    data = bytearray(clip.read_bytes())
    starts = [at for at in range(0, len(data) - 187, 188)
              if data[at + 1] & 0x40 and ((data[at + 1] & 0x1F) << 8 | data[at + 2]) == pid]
    data[starts[len(starts) * 4 // 5] + 2] ^= 0x02
    bad = tmp_path / "pid.ts"
    bad.write_bytes(bytes(data))
    with av.open(str(bad)) as c:
        # PyAV 18 may or may not raise IndexError at the end of this demux: it reads past an array for the new
        # stream (``include_stream``), so that depends on what the heap held (one run in six failed on it)
        with contextlib.suppress(IndexError):
            for _ in c.demux(c.streams.video[0]):
                pass
        assert streams_added(c) == 1  # FFmpeg's own stream list has the new one
    return bad


@pytest.mark.parametrize(("audio", "extra"), [(True, ["--no-audio"]), (True, []), (False, [])])
def test_a_stream_appearing_mid_file_is_ignored(tmp_path, capsys, vid, negate_onnx, audio, extra):
    src = _ts_with_a_stream_appearing(tmp_path, audio)
    want = vid.in_order(vid.reference(src))
    assert len(want) == 47
    rc, err, stats = _run(capsys, src, tmp_path / "out.mkv", negate_onnx, *extra)
    assert rc == 0, err
    assert "a stream appeared after the start of the file; it is ignored" in err
    got = _times(tmp_path / "out.mkv")
    assert stats["frames"] == len(got) == 47 and [t - got[0] for t in got] == [t - want[0] for t in want]
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video"] + (["audio"] if audio and not extra else [])


def test_pass_through_packets_the_muxer_refuses_are_dropped_and_counted(tmp_path, capsys, vid, negate_onnx):
    # Matroska takes two audio packets at the same time; MP4 needs strictly increasing DTS and refused the
    # second, which ended the whole run ("writing out.mp4 failed: Invalid argument").
    clip = make_test_clip(tmp_path / "c.mkv", frames=12)
    bad = tmp_path / "dup.mkv"
    previous = {}

    def edit(kind, n, p):
        if kind == "audio" and n == 6:
            p.pts = p.dts = previous["pts"]
        if kind == "audio":
            previous["pts"] = p.pts

    _remux(clip, bad, "matroska", edit)
    src_audio = vid.audio(bad)
    rc, err, stats = _run(capsys, bad, tmp_path / "out.mp4", negate_onnx)
    assert rc == 0, err
    assert len(vid.frames(tmp_path / "out.mp4")) == 12
    assert [data for _, data in vid.audio(tmp_path / "out.mp4")] == [d for i, (_, d) in enumerate(src_audio) if i != 6]
    assert stats["damage"] == {"#1 audio": {"packets_dropped": 1}}
    assert err.count("warning:") == 1 and "audio stream #1 (aac" in err and "timestamp out of order" in err


def test_joined_mpegts_recordings_continue_instead_of_being_dropped(tmp_path, capsys, vid, negate_onnx):
    # `cat a.ts b.ts`: the second recording's timestamps start again from the first's; MPEG-TS allows such
    # discontinuities, and ffmpeg shifts what follows a jump of more than 10 s to continue.
    part = make_test_clip(tmp_path / "part.ts", frames=24, fps=2, width=48, height=32)  # 12 s
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    rc, err, stats = _run(capsys, joined, tmp_path / "out.mp4", negate_onnx)
    assert stats["frames"] == len(_times(tmp_path / "out.mp4"))
    assert rc == 0 and "timestamps jump by -12.0 s (a discontinuity" in err, err
    got = _times(tmp_path / "out.mp4")
    assert len(got) == 2 * len(_times(part)) and got[-1] - got[0] > 23  # both recordings, one after the other
    assert len(vid.audio(tmp_path / "out.mp4")) == 2 * len(vid.audio(part))  # every audio packet of both


def test_a_video_stream_that_goes_on_after_the_chosen_one_is_noted(tmp_path, capsys, vid, negate_onnx):
    # Two recordings with different video PIDs joined (a program that switched its video PID): both streams are
    # in the header, FFmpeg picks the first and so do we; the frames of the second are left out, now with a note.
    parts = []
    for i, pid in enumerate((0x100, 0x200)):
        clip = make_test_clip(tmp_path / f"c{i}.mkv", frames=12, audio=False, seed=i)
        part = tmp_path / f"p{i}.ts"
        with av.open(str(clip)) as src, av.open(str(part), "w", format="mpegts",
                                                options={"mpegts_start_pid": str(pid)}) as dst:
            out = dst.add_stream_from_template(src.streams.video[0])
            for p in src.demux(video=0):
                if p.size:
                    p.stream, p.pts, p.dts = out, p.pts + 480 * i, p.dts + 480 * i  # (ms: the second goes on)
                    dst.mux(p)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    with av.open(str(joined)) as c:
        assert [s.type for s in c.streams] == ["video", "video"]
    rc, err, stats = _run(capsys, joined, tmp_path / "out.mkv", negate_onnx)
    assert rc == 0 and stats["frames"] == len(vid.reference(joined, 0)) == 12, err
    notes = [line for line in err.splitlines() if "goes on for" in line]
    assert len(notes) == 1 and "video stream #1 (h264 64x48) goes on for 0.5 s after stream #0" in notes[0]
    assert "--video-stream 1 takes that stream" in notes[0]
