"""The decode thread: reads an input, converts frames to RGB, optionally paces them, hands them over.

Decoding and colour conversion run here, overlapping the model on the main thread; the hand-off
(``LatestSlot`` or ``BoundedQueue``) decides whether a slow model drops frames or slows the reader.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from pipeline.live.frames import frame_to_rgb
from pipeline.live.inputs import InputSpec, open_input
from pipeline.live.realtime import Mailbox, Pacer
from train.errors import StylizeError


@dataclass
class TimedFrame:
    """A decoded RGB frame, its media time and when it became available (``time.perf_counter``)."""

    index: int  # decode order, from 0
    rgb: np.ndarray  # (H, W, 3) uint8
    time_s: float  # presentation time in seconds
    t_decoded: float


class FrameReader:
    """Runs the decode loop of one input in a daemon thread, feeding a ``Mailbox``."""

    def __init__(self, spec: InputSpec, *, pace: bool = False, speed: float = 1.0,
                 open_timeout: float = 30.0, read_timeout: float = 10.0) -> None:
        self.spec = spec
        self.container = open_input(spec, open_timeout=open_timeout, read_timeout=read_timeout)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "SLICE"  # frame threading would add (threads - 1) frames of delay
        self.fps = self._rate(self.stream)
        self.produced = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._pacer = Pacer(speed, stop=self._stop) if pace else None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    @staticmethod
    def _rate(stream: av.video.stream.VideoStream) -> float:
        rate: Fraction | None = stream.average_rate or stream.guessed_rate or stream.base_rate
        return float(rate) if rate else 30.0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as the demuxer reports it."""
        return self.stream.codec_context.width, self.stream.codec_context.height

    @property
    def paced(self) -> bool:
        return self._pacer is not None

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def start(self, mailbox: Mailbox[TimedFrame]) -> None:
        self._thread = threading.Thread(target=self._run, args=(mailbox,), name="stylize-decode", daemon=True)
        self._thread.start()

    def _frames(self):
        """Decoded frames; devices that answer EAGAIN (avfoundation) are polled again."""
        while not self._stop.is_set():
            try:
                for packet in self.container.demux(self.stream):
                    yield from packet.decode()
                    if self._stop.is_set():
                        return
                return
            except av.error.BlockingIOError:
                time.sleep(0.001)

    def _run(self, mailbox: Mailbox[TimedFrame]) -> None:
        try:
            for frame in self._frames():
                t = frame.time if frame.time is not None else self.produced / self.fps
                rgb = frame_to_rgb(frame)
                if self._pacer is not None:
                    self._pacer.wait(t)
                if self._stop.is_set():
                    break
                mailbox.put(TimedFrame(self.produced, rgb, float(t), time.perf_counter()))
                self.produced += 1
        except av.error.ExitError:
            # UDP/MPEG-TS has no end-of-stream: silence after frames is the end; silence before any is an error.
            if not self._stop.is_set() and self.produced == 0:
                self.error = StylizeError(f"{self.spec.target}: no frames within the read timeout")
        except (av.error.FFmpegError, OSError) as exc:
            if not self._stop.is_set():
                self.error = StylizeError(f"reading {self.spec.target} failed: "
                                          f"{getattr(exc, 'strerror', None) or exc}")
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread, never lost here
            self.error = exc
        finally:
            self._done.set()
            mailbox.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the input to end (or fail); True if it did within ``timeout``."""
        return self._done.wait(timeout)

    def stop(self, join_timeout: float = 15.0) -> None:
        """Ask the thread to end, wait for it, close the input."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)
        if self._thread is None or not self._thread.is_alive():
            self.container.close()
