"""Live ``Source``s for the pipeline's frame path: cameras, network streams and stdin, and timestamp pacing.

``LiveSource`` is a ``FileSource`` whose container is opened from an ``InputSpec`` (device, URL, ``pipe:0``)
with low-latency demuxer options and slice-only decoder threads; it yields the same ``VideoItem``s, so
the ``Runner`` and ``FrameProcessor`` (our colour conversion on the model's device) serve files and live
video alike. ``PacedSource`` wraps any source and releases frames at their timestamps, so a file can stand
in for a camera (``--pace``).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.source import (
    FileSource,
    FileSourceOptions,
    PacketItem,
    SourceStats,
    StreamInfo,
    Unseekable,
    VideoItem,
)
from stylize_video.pipeline.live.inputs import InputSpec, open_input
from stylize_video.pipeline.live.realtime import Pacer


class LiveSource(FileSource):
    """Decode a camera / network / stdin input (``parse_input``) with PyAV.

    ``--duration`` (and ``--start`` on stdin, read from its start) count from the input's start, as for files
    (live timestamps rarely start at 0). Silence longer than
    ``read_timeout`` ends the input (UDP/MPEG-TS has no end-of-stream); silence before the first frame is
    an error. NVDEC is not used here: live inputs are decoded on the CPU.
    """

    def __init__(self, spec: InputSpec, options: FileSourceOptions | None = None, *,
                 open_timeout: float = 30.0, read_timeout: float = 10.0) -> None:
        self.spec = spec
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.path = "stdin" if spec.kind == "stdin" else spec.target  # used in messages only
        self.options = options or FileSourceOptions(thread_type="SLICE")
        self.stats = SourceStats()
        self._stop = False
        if spec.kind == "stdin" and self.options.start:  # a pipe cannot seek, nor be opened again
            self._seekable = False
            warnings.warn(f"stdin cannot seek: decoding from its start up to --start {self.options.start:g}",
                          stacklevel=2)
        self._open("cpu", None)

    @property
    def live(self) -> bool:
        return self.spec.live

    def _open(self, decode_path: str, hwaccel: object | None) -> None:
        self.container = open_input(self.spec, open_timeout=self.open_timeout, read_timeout=self.read_timeout)
        try:
            self._setup(decode_path)
        except Unseekable:  # --start on a file opened with options that cannot seek: read it from the start
            self.container.close()
            self._seekable = False
            self._open(decode_path, hwaccel)
            return
        except BaseException:
            self.container.close()
            raise
        if self.spec.live:
            self.info.frames = None  # no end known, whatever the demuxer guessed

    def _demux(self) -> Iterator[av.Packet]:
        """Packets until the end, the read timeout or ``stop()``; devices answering EAGAIN are polled again."""
        while not self._stop:
            try:
                yield from self.container.demux([self.video, *self.passthrough])
                return
            except av.error.BlockingIOError:  # avfoundation: no frame ready yet
                time.sleep(0.001)
            except av.error.ExitError:  # the read timeout (FFmpeg's interrupt callback)
                if self.stats.decoded == 0 and not self._stop:
                    raise StylizeError(f"{self.path}: no frames within the {self.read_timeout:g} s read timeout") \
                        from None
                return
            except (av.error.FFmpegError, OSError) as exc:
                if self._stop:
                    return
                if self.stats.decoded == 0:
                    raise StylizeError(f"reading {self.path} failed: {getattr(exc, 'strerror', None) or exc}"
                                       f"{self._pipe_hint()}") from None
                self.stats.corrupt += 1  # a broken stream after frames arrived: end like a file does
                return


    def _pipe_hint(self) -> str:
        """Why an MP4/MOV read from a pipe fails: its index (moov) is usually written after the media (no
        ``faststart``), and the demuxer cannot go back from it to the samples on a pipe."""
        if self.spec.kind != "stdin" or "mov" not in self.container.format.name.split(","):
            return ""
        return ("; an MP4/MOV whose index (moov) comes after the media cannot be read from a pipe: give the file "
                "itself, or remux it (ffmpeg -i IN -c copy -movflags faststart OUT.mp4, or to .mkv/.ts)")


class PacedSource:
    """Releases the video frames of ``source`` at their timestamps (``speed`` x real time), like ``ffmpeg -re``."""

    paced = True

    def __init__(self, source: FileSource, speed: float = 1.0) -> None:
        self.source = source
        self._stop = threading.Event()
        self._pacer = Pacer(speed, stop=self._stop)

    @property
    def info(self) -> StreamInfo:
        return self.source.info

    @property
    def passthrough(self) -> list:
        return self.source.passthrough

    @property
    def stats(self) -> SourceStats:
        return self.source.stats

    @property
    def live(self) -> bool:
        return bool(getattr(self.source, "live", False))

    def __iter__(self) -> Iterator[VideoItem | PacketItem]:
        for item in self.source:
            if isinstance(item, VideoItem):
                self._pacer.wait(item.frame.time)
            if self._stop.is_set():
                return
            yield item

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()

    def close(self) -> None:
        self.source.close()
