"""Subtitle streams through stylize-video: copied bit for bit where the container takes the codec,
re-encoded as text (SubRip/ASS/WebVTT -> mov_text, mov_text -> ASS, ... -> WebVTT) where it doesn't,
dropped with one warning otherwise (bitmap subtitles); metadata, disposition and the --start window kept.

Test inputs are built with PyAV alone (no ffmpeg CLI): text cues come from FFmpeg's SRT demuxer, PGS from
its SUP demuxer (segments written here), DVD subtitles are the PGS bitmaps encoded by FFmpeg's dvdsub.
"""

from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.passthrough import TextRecoder
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.io.source import FileSourceOptions
from stylize_video.pipeline.job import JobOptions, stylize_file
from stylize_video.pipeline.synth import make_test_clip

# (start s, end s, text): 12 frames at 25 fps last 0.48 s
CUES = [(0.04, 0.20, "Hello"), (0.20, 0.36, "<i>Second</i> cue"), (0.40, 0.46, "Third")]
BITMAP_TIMES = [(0.04, 0.20), (0.40, 0.46)]


@dataclass
class Sub:
    """One subtitle stream to put in a test input."""

    kind: str  # subrip | ass | webvtt | mov_text (text, from the SRT cues) | pgs | dvd (bitmap)
    language: str
    title: str = ""
    forced: bool = False


def _srt(path: Path) -> Path:
    def ts(t: float) -> str:
        ms = round(t * 1000)
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"

    path.write_text("".join(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(CUES, 1)))
    return path


def _pgs_segment(kind: int, data: bytes, pts: int) -> bytes:
    return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data


def _sup(path: Path) -> Path:
    """A real PGS (.sup) file: a 4x2 white box shown and cleared at BITMAP_TIMES (90 kHz clock)."""
    out, number = b"", 0
    for start, end in BITMAP_TIMES:
        pts = round(start * 90000)
        pcs = struct.pack(">HHBHBBBB", 64, 48, 0x10, number, 0x80, 0, 0, 1) + struct.pack(">HBBHH", 0, 0, 0, 8, 8)
        wds = struct.pack(">BBHHHH", 1, 0, 8, 8, 4, 2)
        pds = struct.pack(">BB", 0, 0) + bytes([1, 235, 128, 128, 255])  # entry 1: opaque white
        rle = bytes([1, 1, 1, 1, 0, 0]) * 2  # two lines of four pixels of colour 1
        ods = struct.pack(">HBB", 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, "big") + struct.pack(">HH", 4, 2) + rle
        for kind, data in ((0x16, pcs), (0x17, wds), (0x14, pds), (0x15, ods), (0x80, b"")):
            out += _pgs_segment(kind, data, pts)
        pts = round(end * 90000)
        clear = struct.pack(">HHBHBBBB", 64, 48, 0x10, number + 1, 0, 0, 0, 0)
        out += _pgs_segment(0x16, clear, pts) + _pgs_segment(0x17, wds, pts) + _pgs_segment(0x80, b"", pts)
        number += 2
    path.write_bytes(out)
    return path


def _encoded(out: av.container.OutputContainer, src: av.stream.Stream, packets: list[av.Packet], codec: str):
    """A ``codec`` stream in ``out`` and its packets: ``packets`` decoded and encoded again, timing kept."""
    stream = out.add_stream(codec)
    stream.time_base = src.time_base
    dec = av.CodecContext.create(src.codec_context.codec.name, "r")
    dec.open(strict=False)
    if dec.subtitle_header:
        stream.codec_context.subtitle_header = dec.subtitle_header
    result = []
    for p in packets:
        subs = dec.decode2(p)
        if subs is None or len(subs) == 0:
            continue
        q = stream.codec_context.encode_subtitle(subs)
        q.time_base, q.pts, q.dts = p.time_base, p.pts, p.pts
        q.duration = p.duration or round(0.16 / p.time_base)  # PGS packets carry no duration
        result.append(q)
    return stream, result


def make_subtitled(path: Path, subs: list[Sub], audio: bool = True, codec: str = "libx264") -> Path:
    """A 64x48, 12-frame clip (+ AAC) with ``subs`` muxed in, interleaved by time like a real file."""
    tmp = path.parent / f"{path.stem}.parts"
    tmp.mkdir()
    base = make_test_clip(tmp / "base.mkv", frames=12, audio=audio, codec=codec)
    inputs = [av.open(str(base)), av.open(str(_srt(tmp / "cues.srt"))), av.open(str(_sup(tmp / "box.sup")))]
    try:
        video, text, pgs = inputs
        out = av.open(str(path), "w")
        copies = {s.index: out.add_stream_from_template(s) for s in video.streams}
        queue = [(p, copies[p.stream.index]) for p in video.demux() if p.dts is not None]
        text_packets = [p for p in text.demux() if p.dts is not None]
        pgs_packets = [p for p in pgs.demux() if p.dts is not None]
        for sub in subs:
            if sub.kind in ("subrip", "pgs"):
                src, packets = (text, text_packets) if sub.kind == "subrip" else (pgs, pgs_packets)
                o = out.add_stream_from_template(src.streams[0])
                made = [(p, o) for p in packets]
            else:
                src, packets = (pgs, pgs_packets) if sub.kind == "dvd" else (text, text_packets)
                o, encoded = _encoded(out, src.streams[0], packets, "dvdsub" if sub.kind == "dvd" else sub.kind)
                made = [(p, o) for p in encoded]
            o.metadata["language"] = sub.language
            if sub.title:
                o.metadata["title"] = sub.title
            if sub.forced:
                o.disposition = av.stream.Disposition.forced
            queue += made
        for packet, stream in sorted(queue, key=lambda ps: (ps[0].dts * ps[0].time_base, ps[1].index)):
            packet.stream = stream
            out.mux(packet)
        out.close()
    finally:
        for c in inputs:
            c.close()
    return path


# ---------------------------------------------------------------------------------------------- reading back


@dataclass
class Track:
    codec: str
    language: str | None
    title: str | None
    disposition: int
    packets: list[tuple[Fraction, Fraction, bytes]]  # (pts s, duration s, payload) of every non-empty packet
    cues: list[tuple[Fraction, Fraction]]  # (pts s, duration s) of packets that decode to a subtitle
    texts: list[tuple[Fraction, str]]  # (pts s, plain text) of those, for text codecs


def _plain(ass_line: bytes) -> str:
    """Text of an ASS event without override tags: what a viewer reads, comparable across codecs."""
    return re.sub(r"\{[^}]*\}", "", ass_line.decode().split(",", 8)[-1])


def subtitle_tracks(path: Path) -> list[Track]:
    tracks = []
    with av.open(str(path)) as c:
        for s in c.streams.subtitles:
            md, cc = s.metadata, s.codec_context
            tracks.append(Track(cc.codec.canonical_name, md.get("language"), md.get("title") or md.get("name"),
                                int(s.disposition), [], [], []))
        by_index = {s.index: t for s, t in zip(c.streams.subtitles, tracks)}
        for p in c.demux(*c.streams.subtitles):
            if not p.size:
                continue
            track = by_index[p.stream.index]
            track.packets.append((p.pts * p.time_base, p.duration * p.time_base, bytes(p)))
            subs = p.decode()
            if not subs:  # mov_text gap samples, PGS segments before the display set's end
                continue
            track.cues.append((p.pts * p.time_base, p.duration * p.time_base))
            if p.stream.codec_context.codec.text_sub:
                track.texts.append((p.pts * p.time_base, " ".join(_plain(s.ass) for s in subs)))
    return tracks


def _audio(path: Path) -> list[tuple[Fraction, bytes]]:
    """(PTS s, payload) of the audio packets: comparable across containers with other time bases."""
    with av.open(str(path)) as c:
        return [(p.pts * p.time_base, bytes(p)) for p in c.demux(audio=0) if p.size]


def _check_output(dst: Path) -> None:
    assert dst.is_file() and not list(dst.parent.glob("*.inprogress")) and not list(dst.parent.glob("*.partial.*"))


def _encoder(dst: Path) -> list[str]:
    return ["--codec", "libvpx-vp9", "--crf", "40"] if dst.suffix == ".webm" else ["--preset", "ultrafast"]


def _cli(capsys, src: Path, dst: Path, checkpoint: Path, *extra: str) -> list[str]:
    """``stylize-video SRC DST`` in-process with a real network; asserts success, returns its warning lines."""
    rc = main([str(src), str(dst), "--checkpoint", str(checkpoint), "--quiet", *_encoder(dst), *extra])
    err = capsys.readouterr().err
    assert rc == 0, err
    _check_output(dst)
    return [line for line in err.splitlines() if line.startswith("stylize-video: warning:")]


def _job(src: Path, dst: Path, backend, **source) -> list[str]:
    """``stylize_file`` with the identity network (10x faster than a CLI run here); returns the warnings."""
    enc = EncoderOptions(codec="libvpx-vp9", crf=40) if dst.suffix == ".webm" else EncoderOptions(preset="ultrafast")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stylize_file(src, dst, backend, JobOptions(encoder=enc, source=FileSourceOptions(**source), progress=False))
    _check_output(dst)
    return [str(w.message) for w in caught]


ALL = [Sub("subrip", "fra", "French", forced=True), Sub("ass", "eng", "English"), Sub("webvtt", "deu"),
       Sub("pgs", "spa", "Signs"), Sub("dvd", "ita")]
EXPECTED_TEXT = [(Fraction(1, 25), "Hello"), (Fraction(1, 5), "Second cue"), (Fraction(2, 5), "Third")]


@pytest.fixture(scope="module")
def mkv_all(tmp_path_factory) -> Path:
    """MKV: H.264 + AAC + SubRip (forced), ASS, WebVTT, PGS, DVD subtitles with language/title tags."""
    return make_subtitled(tmp_path_factory.mktemp("subs") / "all.mkv", ALL)


@pytest.fixture(scope="module")
def mp4_text(tmp_path_factory) -> Path:
    """MP4: H.264 + AAC + mov_text (fra, "French") + DVD subtitles (ita)."""
    return make_subtitled(tmp_path_factory.mktemp("subs") / "text.mp4",
                          [Sub("mov_text", "fra", "French"), Sub("dvd", "ita")])


def test_generated_inputs_are_real(mkv_all, mp4_text):
    tracks = subtitle_tracks(mkv_all)
    assert [t.codec for t in tracks] == ["subrip", "ass", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle"]
    for t in tracks[:3]:
        assert t.texts == EXPECTED_TEXT
    with av.open(str(mkv_all)) as c:  # the bitmap streams decode to the 4x2 box
        boxes = [sub for p in c.demux(subtitles=3) if p.size for sub in p.decode()]
    assert [(b.width, b.height) for b in boxes] == [(4, 2), (4, 2)]
    assert [t.codec for t in subtitle_tracks(mp4_text)] == ["mov_text", "dvd_subtitle"]


def test_mkv_copies_every_subtitle_stream_bit_for_bit(tmp_path, capsys, mkv_all, checkpoints, vid):
    out = tmp_path / "out.mkv"
    assert _cli(capsys, mkv_all, out, checkpoints["style"]) == []
    a, b = subtitle_tracks(mkv_all), subtitle_tracks(out)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        assert (y.codec, y.language, y.title, y.disposition) == (x.codec, x.language, x.title, x.disposition)
        assert y.packets == x.packets  # payload, PTS and duration, exactly
    assert b[0].disposition & int(av.stream.Disposition.forced)
    assert vid.audio(out) == vid.audio(mkv_all) != []


def test_mp4_and_mov_keep_mov_text_and_dvd_where_they_can(tmp_path, mp4_text, identity_backend):
    out = tmp_path / "out.mp4"
    assert _job(mp4_text, out, identity_backend) == []
    a, b = subtitle_tracks(mp4_text), subtitle_tracks(out)
    assert [(t.codec, t.language, t.title) for t in b] == [("mov_text", "fra", "French"), ("dvd_subtitle", "ita", None)]
    assert [t.packets for t in b] == [t.packets for t in a]
    # MOV holds mov_text but no DVD subtitles: that stream alone is dropped, with one warning.
    warned = _job(mp4_text, tmp_path / "out.mov", identity_backend)
    assert len(warned) == 1 and "subtitle stream #3 (dvd_subtitle, ita)" in warned[0]
    assert "out.mov" in warned[0] and "--no-subtitles" in warned[0]
    assert [t.packets for t in subtitle_tracks(tmp_path / "out.mov")] == [a[0].packets]


def test_text_subtitles_become_mov_text_in_mp4(tmp_path, capsys, mkv_all, checkpoints):
    out = tmp_path / "out.mp4"
    warned = _cli(capsys, mkv_all, out, checkpoints["style"])
    # PGS has no MP4 mapping and no text form: the one stream dropped, one line naming stream, output and flag
    assert len(warned) == 1, warned
    assert 'subtitle stream #5 (hdmv_pgs_subtitle, spa "Signs")' in warned[0] and str(out) in warned[0]
    assert "bitmap" in warned[0] and "pass --no-subtitles" in warned[0]
    a, b = subtitle_tracks(mkv_all), subtitle_tracks(out)
    assert [(t.codec, t.language, t.title) for t in b] == [
        ("mov_text", "fra", "French"), ("mov_text", "eng", "English"), ("mov_text", "deu", None),
        ("dvd_subtitle", "ita", None)]
    assert b[0].disposition & int(av.stream.Disposition.forced)
    for t in b[:3]:  # every cue's text at its time, with its duration
        assert t.texts == EXPECTED_TEXT
        assert t.cues == a[0].cues
    # DVD subtitles: MP4 holds them, copied as they are. MP4 stores no gaps for them: a sample lasts until
    # the next one (the SPU's own stop command still ends the display), so only PTS and payload compare.
    assert [(t, data) for t, _, data in b[3].packets] == [(t, data) for t, _, data in a[4].packets]


def test_webm_takes_webvtt_only(tmp_path, mkv_all, identity_backend):
    out = tmp_path / "out.webm"
    warned = _job(mkv_all, out, identity_backend)
    recoded = [w for w in warned if "re-encoded" in w]  # AAC cannot go into WebM: Opus instead, with a note
    assert len(recoded) == 1 and recoded[0].startswith("audio stream #1 (aac): webm cannot hold aac"), warned
    assert "re-encoded to opus" in recoded[0]
    dropped = sorted(re.search(r"(\w+) stream #(\d)", w).group(0) for w in warned if w not in recoded)
    assert dropped == ["subtitle stream #5", "subtitle stream #6"], warned
    assert all("--no-subtitles" in w for w in warned if w not in recoded)
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["opus"]
    a, b = subtitle_tracks(mkv_all), subtitle_tracks(out)
    assert [(t.codec, t.language) for t in b] == [("webvtt", "fra"), ("webvtt", "eng"), ("webvtt", "deu")]
    assert b[2].packets == a[2].packets  # WebVTT was copied, not re-encoded
    for t in b:
        assert t.texts == EXPECTED_TEXT


def test_mov_text_becomes_ass_in_mkv(tmp_path, mp4_text, identity_backend, vid):
    out = tmp_path / "out.mkv"
    assert _job(mp4_text, out, identity_backend) == []
    a, b = subtitle_tracks(mp4_text), subtitle_tracks(out)
    assert [(t.codec, t.language, t.title) for t in b] == [("ass", "fra", "French"), ("dvd_subtitle", "ita", None)]
    # The MP4's AAC priming starts at -21 ms; Matroska shifts every stream to start at 0, video included.
    shift = vid.pts(out)[0] - vid.pts(mp4_text)[0]
    assert b[0].texts == [(t + shift, text) for t, text in EXPECTED_TEXT]
    assert b[0].cues == [(t + shift, d) for t, d in a[0].cues]
    assert [(t - shift, data) for t, _, data in b[1].packets] == [(t, data) for t, _, data in a[1].packets]


def test_no_subtitles_drops_them_silently(tmp_path, capsys, mkv_all, checkpoints):
    out = tmp_path / "out.mp4"
    assert _cli(capsys, mkv_all, out, checkpoints["style"], "--no-subtitles") == []
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    assert _audio(out) == _audio(mkv_all) != []  # (no PGS warning either)


def test_start_duration_keep_the_cues_that_start_inside(tmp_path, mkv_all, identity_backend):
    # Window [0.2 s, 0.4 s): like audio packets, a cue is kept when its start is inside the window.
    a, cut = subtitle_tracks(mkv_all), {}
    for ext in ("mkv", "mp4"):
        out = tmp_path / f"cut.{ext}"
        _job(mkv_all, out, identity_backend, start=0.2, duration=0.2)  # --start 0.2 --duration 0.2
        tracks = cut[ext] = subtitle_tracks(out)
        # MP4: no PGS (dropped), and the DVD track, left without a sample, is not written at all
        assert [t.language for t in tracks] == (["fra", "eng", "deu", "spa", "ita"] if ext == "mkv"
                                                else ["fra", "eng", "deu"])
        for t in tracks[:3]:  # the output starts at 0: the cue at 0.2 s in the input is at 0
            assert t.texts == [(Fraction(0), "Second cue")]
    # Matroska: PGS keeps only the display set that clears the box at 0.2 s, bit for bit; DVD has no cue
    # inside (they start at 0.04 s and 0.40 s)
    assert cut["mkv"][3].packets == [(t - Fraction(1, 5), d, b) for t, d, b in a[3].packets
                                     if t == Fraction(1, 5)] != []
    assert cut["mkv"][4].packets == []


def test_a_cue_that_cannot_be_converted_is_skipped_with_one_warning(tmp_path):
    # A bitmap cue handed to a text encoder is a real FFmpeg failure ("Only SUBTITLE_ASS type supported").
    text = av.CodecContext.create("srt", "r")
    text.open(strict=False)
    decoder = av.CodecContext.create("pgssub", "r")
    decoder.open(strict=False)
    encoder = av.CodecContext.create("mov_text", "w")
    encoder.subtitle_header = text.subtitle_header
    encoder.open(strict=False)
    recode = TextRecoder(decoder, encoder, "subtitle stream #7 (test)")
    with av.open(str(_sup(tmp_path / "box.sup"))) as c, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [recode(p) for p in c.demux() if p.size]
    assert results == [None] * len(results) and recode.failed == 2  # both boxes, nothing muxed
    assert len(caught) == 1 and "subtitle stream #7 (test): a cue could not be converted to mov_text" in str(
        caught[0].message)


def _with_flac(path: Path) -> Path:
    """A 12-frame MKV with a FLAC track (half a second of silence): Matroska and MP4 take FLAC, MOV does not."""
    import numpy as np

    base = make_test_clip(path.with_suffix(".base.mkv"), frames=12, audio=False)
    with av.open(str(base)) as src, av.open(str(path), "w") as out:
        video = out.add_stream_from_template(src.streams.video[0])
        audio = out.add_stream("flac", rate=48000)
        audio.layout, audio.time_base = "stereo", Fraction(1, 48000)
        packets = []
        for start in range(0, 24000, 4608):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 4608), np.int16), format="s16", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            packets += audio.encode(frame)
        packets += audio.encode(None)
        for p in src.demux():
            if p.dts is not None:
                p.stream = video
                packets.append(p)
        for p in sorted(packets, key=lambda p: p.dts * p.time_base):
            out.mux(p)
    return path


def test_a_codec_the_muxer_refuses_at_its_header_is_dropped_not_fatal(tmp_path, identity_backend):
    # MOV's codec table lists FLAC, so the stream is added, but the header write refuses it ("Invalid
    # argument"): that failed the whole output. It is one more stream the container cannot hold.
    # Now it is re-encoded to AAC (as ffmpeg does without -c:a copy), with a note, instead of dropped.
    src = _with_flac(tmp_path / "flac.mkv")
    warned = _job(src, tmp_path / "out.mov", identity_backend)
    assert len(warned) == 1 and warned[0].startswith("audio stream #1 (flac): ") and "re-encoded to aac" in warned[0]
    with av.open(str(tmp_path / "out.mov")) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264"), ("audio", "aac")]
        assert c.streams.video[0].frames == 12
        with av.open(str(src)) as a:  # the whole tone, to within one AAC frame
            seconds = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
            assert seconds == pytest.approx(sum(f.samples for f in a.decode(audio=0)) / a.streams.audio[0].rate,
                                            abs=2048 / c.streams.audio[0].rate)
    assert _job(src, tmp_path / "out.mkv", identity_backend) == []  # where it fits, it is still copied
    assert _audio(tmp_path / "out.mkv") == _audio(src) != []


def test_mpegts_drops_subtitles_it_would_write_as_anonymous_data(tmp_path, capsys, mkv_all, checkpoints):
    out = tmp_path / "out.ts"
    warned = _cli(capsys, mkv_all, out, checkpoints["style"], "--format", "mpegts")
    assert len(warned) == 5 and all("subtitle stream #" in w and "cannot go into" in w for w in warned), warned
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]  # no unreadable "data" streams
