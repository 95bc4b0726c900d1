"""Fuzz: damaged copies of small H.264 + AAC clips (MP4, Matroska, MPEG-TS) through stylize-video, in-process.

Fixed seed, a bounded number of inputs (each mutation on each container, 4 times, with and without --no-audio,
into .mkv and .mp4; for MPEG-TS also a damaged PES timestamp and a join with a timestamp jump). For every run: no traceback, no hang (SIGALRM), exit 0 with every frame FFmpeg's default
decoder returns for the processed stream (those in time order) whenever it returns at least one, otherwise one
`error:` line and nothing under the output name; no temporary file left. A failure names the seed, the case and
the mutation, so it can be replayed with ``mutate``.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
from pathlib import Path

import av
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.streams import choose_video_stream
from stylize_video.pipeline.synth import make_test_clip

SEED = 20261205
CONTAINERS = ("mp4", "mkv", "ts")
MUTATIONS = ("flip", "zero", "duplicate", "swap", "truncate")
# MPEG-TS only: a damaged PES timestamp (one bit of a PTS/DTS), and two recordings joined (`cat`) whose timestamps
# differ by a random jump: what the discontinuity handling must tell apart
TS_MUTATIONS = ("stamp", "join")
CASES = [(c, m, v) for c in CONTAINERS for m in MUTATIONS for v in range(4)]  # 60 runs, ~15 s on 2 cores
CASES += [("ts", m, v) for m in TS_MUTATIONS for v in range(4)]  # (appended: the cases above keep their seeds)
TIMEOUT_S = 30
_TICK_BITS = 33  # PES timestamps: 33 bits of 90 kHz ticks


def _pes_stamps(data: bytes) -> list[int]:
    """Offsets of the 5-byte PTS/DTS fields of every PES header in an MPEG-TS."""
    found = []
    for at in range(0, len(data) - 187, 188):
        if data[at] != 0x47 or not data[at + 1] & 0x40:
            continue
        p = at + 4 + (data[at + 4] + 1 if data[at + 3] & 0x20 else 0)
        if p + 19 <= at + 188 and data[p:p + 3] == b"\0\0\1" and data[p + 7] & 0x80:
            found += [p + 9] + ([p + 14] if data[p + 7] & 0x40 else [])
    return found


def _stamp(d: bytearray, at: int, add: int = 0) -> int:
    """Read the timestamp at ``at``, write it back plus ``add`` (mod 2^33; marker bits kept); returns the old one."""
    b = d[at:at + 5]
    ts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
    new = (ts + add) % (1 << _TICK_BITS)
    d[at:at + 5] = bytes([(b[0] & 0xF1) | ((new >> 29) & 0x0E), (new >> 22) & 0xFF, ((new >> 14) & 0xFE) | 1,
                          (new >> 7) & 0xFF, ((new << 1) & 0xFE) | 1])
    return ts


def mutate(data: bytes, rng: random.Random, kind: str) -> tuple[bytes, str]:
    """``data`` damaged by ``kind``; also a description of exactly what was done (to replay a failure)."""
    d, n = bytearray(data), len(data)
    if kind == "flip":  # bit errors
        spots = sorted((rng.randrange(n), rng.randrange(8)) for _ in range(rng.randint(1, 24)))
        for at, bit in spots:
            d[at] ^= 1 << bit
        return bytes(d), f"flip bits (offset, bit) {spots}"
    if kind == "zero":  # a burst of zeros (a lost network packet, a bad sector)
        at, length = rng.randrange(n), rng.randint(16, 4000)
        d[at:at + length] = bytes(len(d[at:at + length]))
        return bytes(d), f"zero {length} bytes at {at}"
    if kind == "duplicate":  # a range repeated elsewhere (a resent chunk)
        at, length, to = rng.randrange(n), rng.randint(16, 4000), rng.randrange(n)
        d[to:to] = data[at:at + length]
        return bytes(d), f"copy {length} bytes from {at} to {to}"
    if kind == "swap":  # two chunks exchanged
        length = rng.randint(188, 6000)
        a, b = sorted(rng.sample(range(n - length), 2))
        if b < a + length:
            b = min(a + length, n - length)
        d[a:a + length], d[b:b + length] = data[b:b + length], data[a:a + length]
        return bytes(d), f"swap {length} bytes at {a} and {b}"
    if kind == "stamp":  # one bit error in one PES timestamp: a far-off PTS or DTS, not a discontinuity
        at, bit = rng.choice(_pes_stamps(data)), rng.randrange(20, _TICK_BITS)
        _stamp(d, at, 1 << bit)
        return bytes(d), f"add 2^{bit} ticks to the PES timestamp at {at}"
    if kind == "join":  # `cat a.ts b.ts`: b is a copy of a whose timestamps differ by a jump of 12 s to 10 min
        jump = rng.choice((-1, 1)) * rng.randint(12 * 90000, 600 * 90000)
        later = bytearray(data)
        for at in _pes_stamps(data):
            _stamp(later, at, jump)
        return bytes(d) + bytes(later), f"join a copy {jump / 90000:+.3f} s later"
    at = rng.randint(n // 8, n - 1)  # truncate: an interrupted download
    return bytes(d[:at]), f"truncate to {at} of {n} bytes"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("fuzz")
    return {c: make_test_clip(root / f"clip.{c}", width=48, height=32, frames=24, seed=3).read_bytes()
            for c in CONTAINERS}


def _expected_frames(path: Path, vid) -> tuple[int, int] | None:
    """(fewest, most) frames the run must write: FFmpeg's default decode of the stream we process, those in
    time order; None when the file does not open or has no decodable video stream. Where the format allows
    timestamp jumps (MPEG-TS), a damaged timestamp far off is a discontinuity that shifts what follows, as in
    ffmpeg, so frames after it are kept too: up to every decoded frame."""
    try:
        with av.open(str(path), metadata_errors="replace") as c:
            stream = choose_video_stream(c, None, str(path))
            index, rate = stream.index, stream.average_rate or stream.guessed_rate
            jumps = bool(c.format.flags & 0x0200)  # AVFMT_TS_DISCONT
    except (av.error.FFmpegError, StylizeError):
        return None
    frames = vid.reference(path, index)
    kept = len(vid.in_order(frames, 1 / rate if rate else None))
    return (kept, len(frames) if jumps else kept) if kept else None


@contextlib.contextmanager
def _deadline(seconds: int):
    def hang(signum, frame):
        raise TimeoutError(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("container", "kind", "variant"), CASES,
                         ids=[f"{c}-{m}-{v}" for c, m, v in CASES])
def test_damaged_input(tmp_path, capsys, clips, vid, negate_onnx, container, kind, variant):
    case = CASES.index((container, kind, variant))
    rng = random.Random(SEED * 1000 + case)
    data, what = mutate(clips[container], rng, kind)
    src = tmp_path / f"in.{container}"
    src.write_bytes(data)
    out = tmp_path / f"out.{('mkv', 'mp4')[case % 2]}"
    stats = tmp_path / "stats.json"
    args = [str(src), str(out), "--onnx", str(negate_onnx), "--preset", "ultrafast", "--json", str(stats)]
    args += ["--no-audio"] if case % 3 == 0 else []
    replay = f"seed {SEED}, case {case} ({container}, {what}), args {args[2:]}"
    try:
        with _deadline(TIMEOUT_S):
            rc = main(args)
    except BaseException as exc:  # noqa: BLE001 - a traceback: anything but one clean error line
        pytest.fail(f"{type(exc).__name__}: {exc} -- {replay}")
    err = capsys.readouterr().err
    assert "Traceback" not in err, replay
    want = _expected_frames(src, vid)
    if want:
        assert rc == 0, f"{err}\n{replay}"
        with av.open(str(out)) as c:
            got = len(list(c.decode(video=0)))
        assert got == json.loads(stats.read_text())["frames"], replay
        assert want[0] <= got <= want[1], f"wrote {got}, FFmpeg decodes {want}: {replay}"
        if kind == "join":  # a clean join: every frame of both recordings
            assert got == want[1], f"wrote {got} of the {want[1]} frames of both recordings: {replay}"
    else:
        errors = [line for line in err.splitlines() if " error: " in line]
        assert rc == 1 and len(errors) == 1 and errors[0].startswith("stylize-video: error: "), f"{err}\n{replay}"
        assert not out.exists(), replay
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([src.name] + ([out.name, stats.name] if rc == 0 else [])), f"{left}: {replay}"
