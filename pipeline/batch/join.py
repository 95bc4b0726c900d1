"""Joining a input's processed segments into its output, without re-encoding.

Video packets are copied from the segment files in order; audio and subtitle packets come once from the input,
through the same routing as ``stylize-video`` (``stylize_video.pipeline.io.passthrough``: copied, text subtitles
converted for the container, or dropped with one warning); rotation is tagged as ``stylize-video`` tags it, the
input's global metadata is carried, and the colour tags travel in the segments' codec parameters.

Timestamps: every packet keeps the PTS and duration its encoder gave it (the input frame's PTS; taken from the
segment's timing sidecar, see ``worker``). Each segment's encoder started its own DTS sequence, so DTS are rebuilt for the joined stream the way x264 builds them for
one run: with ``r`` the encoder's DTS delay in frames (how many of a segment's packets it dated before its first
PTS; at least the reorder depth, the most packets that precede one in decode order yet are presented after it),
packet ``j`` gets ``dts_j = pts_sorted[j - r]`` (``pts_sorted[j] - (pts_sorted[r] - pts_sorted[0])`` for
``j < r``). That is strictly increasing and never after its PTS, whatever the frame rate does (VFR).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.worker import BadSegment, read_timing
from stylize_video.pipeline.io.decode import demux_packets
from stylize_video.pipeline.io.discontinuity import Discontinuities
from stylize_video.pipeline.io.paths import ffmpeg_path
from stylize_video.pipeline.io.sink import EncoderOptions, FileSink, VideoSpec
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions, SourceStats, StreamInfo
from stylize_video.pipeline.job import input_plan, rotation_plan

# global tags a muxer writes itself: copying the input's would describe the input's file, not ours
_MUXER_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time", "duration"})


@dataclass(frozen=True)
class JoinOptions:
    copy_audio: bool = True
    copy_subtitles: bool = True
    apply_rotation: bool = False  # the pixels were rotated upright: no rotation tag (as stylize-video)
    overwrite: bool = False


@dataclass
class JoinStats:
    frames: int = 0
    passthrough_packets: int = 0


class JoinSink(FileSink):
    """The output file: video packets copied from ``template``'s stream (no encoder), pass-through routed as by
    ``FileSink``; temporary name until ``close``."""

    def __init__(self, path: Path, template: av.video.stream.VideoStream, encoder: EncoderOptions,
                 overwrite: bool, metadata: dict[str, str]) -> None:
        super().__init__(path, encoder, overwrite=overwrite)
        self.template = template
        self.metadata = metadata

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None:
        super().open(spec, passthrough)
        self.container.metadata.update(self.metadata)

    def _add_video(self, spec: VideoSpec) -> None:
        stream = self.container.add_stream_from_template(self.template)
        stream.time_base = spec.time_base
        # NUT keeps no colour tags: codecs that do not carry them in the bitstream (FFV1) would lose them
        cc, c = stream.codec_context, spec.colour
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = c.colorspace, c.range_code, c.primaries, c.trc
        if spec.rate:  # as stylize-video's encoder stream: muxers derive a missing last duration from it
            stream.codec_context.framerate = spec.rate
        if spec.rotation:
            stream.set_display_rotation(float(spec.rotation))
        self.video, self.spec = stream, spec

    def write_video_packet(self, packet: av.Packet) -> None:
        packet.stream = self.video
        self._mux([packet])
        self.frames_written += 1

    def _drain(self) -> None:
        """No encoder here: the packets arrive encoded."""


def encoder_delay(timing: dict[str, list[int]]) -> int:
    """Packets a segment's encoder dated before its first PTS (x264: its B-frame delay, 0 without B-frames)."""
    first = min(timing["pts"], default=0)
    return sum(d < first for d in timing["dts"])


def decode_timestamps(pts: list[int], delay: int = 0) -> list[int]:
    """DTS for packets with these PTS, in decode order, ``delay`` frames behind at least (see the module
    docstring); StylizeError on repeated PTS."""
    ordered = sorted(pts)
    rank = {p: i for i, p in enumerate(ordered)}
    if len(rank) != len(pts):
        raise StylizeError("two video packets share a timestamp; this output cannot be joined")
    r = min(max([j - rank[p] for j, p in enumerate(pts)] + [delay, 0]), max(len(pts) - 1, 0))
    if r == 0:
        return list(pts)
    lead = ordered[min(r, len(ordered) - 1)] - ordered[0]
    return [ordered[j - r] if j >= r else ordered[j] - lead for j in range(len(pts))]


def _video_packets(paths: list[Path], timings: list[dict[str, list[int]]], dts: list[int],
                   time_base: Fraction) -> Iterator[tuple[Fraction, bool, av.Packet]]:
    it = iter(dts)
    for path, timing in zip(paths, timings):
        count = len(timing["pts"])
        with _reading(path), av.open(str(path)) as c:
            n = 0
            for p in c.demux(c.streams.video[0]):
                if not p.size:
                    continue
                if n == count:
                    raise BadSegment(path, f"more packets than its timing ({count})")
                p.time_base = time_base
                p.pts, p.dts, p.duration = timing["pts"][n], next(it), timing["duration"][n]
                n += 1
                yield p.dts * time_base, True, p
            if n != count:
                raise BadSegment(path, f"{n} packets, its timing {count}")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """FFmpeg's errors while reading segment ``path`` (empty, cut short, garbage) as ``BadSegment``."""
    try:
        yield
    except (av.error.FFmpegError, OSError, IndexError) as exc:  # IndexError: no video stream in it
        raise BadSegment(path, str(exc) or type(exc).__name__) from None


def _passthrough_packets(container: av.container.InputContainer, video: av.stream.Stream,
                         streams: list[av.stream.Stream], name: str) -> Iterator[tuple[Fraction, bool, av.Packet]]:
    """The input's pass-through packets as ``FileSource`` hands them to one run: cover art first (untimed),
    timestamps shifted after a jump where the format allows jumps (then the video is read along, unused, so
    the jumps are found as there), packets without any timestamp left out."""
    if not streams:
        return
    jumps = Discontinuities(container, name)
    for p in jumps.shifted(demux_packets(container, [video, *streams] if jumps.enabled else streams, SourceStats(),
                                         name)):
        if p.stream.index == video.index:
            continue
        if p.stream.disposition & av.stream.Disposition.attached_pic:
            yield Fraction(-(1 << 62)), False, p
            continue
        ts = p.dts if p.dts is not None else p.pts
        if ts is None:
            continue
        yield ts * p.time_base, False, p


def _output_spec(info: StreamInfo, template: av.video.stream.VideoStream, apply_rotation: bool) -> VideoSpec:
    """What ``stylize_video.pipeline.job.stylize`` gave the encoder of one run: the input's time base and nominal
    rate, the colour tags of the planes the model saw, the rotation left to tag."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the workers already said it
        colour = input_plan(info.pix_fmt, info.colour)[1]
        tag = rotation_plan(info.rotation, apply_rotation)[1]
    cc = template.codec_context
    return VideoSpec(cc.width, cc.height, cc.pix_fmt, info.time_base, info.rate, colour, rotation=tag)


def join_segments(src: str | os.PathLike[str], segments: list[Path], output: Path, encoder: EncoderOptions,
                  options: JoinOptions, source: FileSourceOptions | None = None) -> JoinStats:
    """Write ``output`` from the segment files (in order) and ``src``'s pass-through streams.

    ``encoder``: the segments' encoder options; ``source``: how the input was read (``video_stream``,
    ``deinterlace``; the copy flags come from ``options``). Raises ``StylizeError`` when the output cannot be
    written (nothing is left under its name then), ``BadSegment`` (one) when a segment file cannot be read.
    """
    # The video and pass-through streams are the ones FileSource picks (its rules, its flags).
    opts = dataclasses.replace(source or FileSourceOptions(), copy_audio=options.copy_audio,
                               copy_subtitles=options.copy_subtitles)
    probe = FileSource(src, opts)
    info, video, indices = probe.info, probe.video.index, [s.index for s in probe.passthrough]
    probe.close()
    time_base = info.time_base
    timings = [read_timing(path, time_base) for path in segments]
    dts = decode_timestamps([p for t in timings for p in t["pts"]], max(encoder_delay(t) for t in timings))
    with _reading(segments[0]):
        first = av.open(str(segments[0]))
        template = first.streams.video[0]  # (the codec parameters of every segment: same encoder settings)
    with first, av.open(ffmpeg_path(Path(src)), metadata_errors="replace") as inp:
        spec = _output_spec(info, template, options.apply_rotation)
        passthrough = [inp.streams[i] for i in indices]
        metadata = {k: v for k, v in inp.metadata.items() if k.lower() not in _MUXER_TAGS}
        sink = JoinSink(output, template, encoder, options.overwrite, metadata)
        stats = JoinStats()
        try:
            sink.open(spec, passthrough)
            merged = heapq.merge(_video_packets(segments, timings, dts, time_base),
                                 _passthrough_packets(inp, inp.streams[video], passthrough, str(src)),
                                 key=lambda item: item[0])
            for _, video, packet in merged:
                if video:
                    sink.write_video_packet(packet)
                else:
                    sink.write_packet(packet)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        stats.frames, stats.passthrough_packets = sink.frames_written, sink.packets_copied
    return stats
