"""Fuzz: damaged copies of small H.264 + AAC clips (MP4, Matroska, MPEG-TS) through stylize-video, in-process.

Fixed seed, a bounded number of inputs (each mutation on each container, 4 times, with and without --no-audio,
into .mkv and .mp4). For every run: no traceback, no hang (SIGALRM), exit 0 with every frame FFmpeg's default
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
CASES = [(c, m, v) for c in CONTAINERS for m in MUTATIONS for v in range(4)]  # 60 runs, ~15 s on 2 cores
TIMEOUT_S = 30


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
    else:
        errors = [line for line in err.splitlines() if " error: " in line]
        assert rc == 1 and len(errors) == 1 and errors[0].startswith("stylize-video: error: "), f"{err}\n{replay}"
        assert not out.exists(), replay
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([src.name] + ([out.name, stats.name] if rc == 0 else [])), f"{left}: {replay}"
