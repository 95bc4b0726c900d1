"""Live ``Sink``s: an encoded stream to a network URL or stdout, and a tee to several sinks.

``StreamSink`` is the pipeline's ``EncodingSink`` (same encoder set-up, colour tags and muxing as files)
opened on a URL, ``pipe:1`` or a Python socket, with the low-latency encoder settings of
``stylize_video.pipeline.live.encoding``. Frames keep the source's timestamps, so dropped frames leave gaps rather
than speeding the stream up. The virtual camera is ``stylize_video.pipeline.live.vcam.VirtualCameraSink``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.sink import EncoderOptions, EncodingSink, Sink, VideoSpec, choose_pix_fmt
from stylize_video.pipeline.live.encoding import AUTO, live_encoder, pick_codec
from stylize_video.pipeline.live.outputs import OutputSpec
from stylize_video.pipeline.live.tcp import SocketWriter, open_tcp_writer


class StreamSink(EncodingSink):
    """Encode with a low-latency preset and mux to a network URL (``parse_output``) or stdout."""

    def __init__(self, output: OutputSpec, encoder: EncoderOptions | None = None, *, prefer_gpu: bool = False,
                 open_timeout: float = 30.0) -> None:
        enc = encoder or EncoderOptions(codec=AUTO)
        codec = pick_codec(enc.codec, prefer_gpu=prefer_gpu, container_format=output.format)
        super().__init__(dataclasses.replace(enc, codec=codec))
        self.output = output
        self.label = "stdout" if output.kind == "stdout" else output.target
        self.open_timeout = open_timeout
        self._socket: SocketWriter | None = None
        self._last_pts: int | None = None

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        # Receivers (OBS, players, FLV) expect 8-bit 4:2:0: a 10-bit or 4:2:2 camera is sent as 8-bit 4:2:0.
        return choose_pix_fmt(self.encoder.codec, "yuv420p", width, height, self.encoder.pix_fmt)

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None:
        self.encoder = live_encoder(self.encoder, rate=float(spec.rate or 30))
        super().open(spec, passthrough)

    def _open_container(self) -> av.container.OutputContainer:
        target: str | SocketWriter = self.output.target
        if self.output.scheme == "tcp":  # Python sockets: FFmpeg's tcp:// would hold the GIL (see tcp.py)
            target = self._socket = open_tcp_writer(self.output.target, timeout=self.open_timeout)
        try:
            return av.open(target, "w", format=self.output.format, options=self.output.options or None,
                           timeout=(self.open_timeout, self.open_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            self._close_socket()
            raise StylizeError(f"cannot open output {self.label}: {getattr(exc, 'strerror', None) or exc}") \
                from None

    def write_frame(self, frame: av.VideoFrame) -> None:
        # Muxers need strictly increasing timestamps; live sources occasionally repeat one.
        if frame.pts is not None and self._last_pts is not None and frame.pts <= self._last_pts:
            frame.pts = self._last_pts + 1
        self._last_pts = frame.pts
        super().write_frame(frame)

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def close(self, interrupted: bool = False) -> str | None:
        """Flush the encoder and close the stream (an interrupted stream simply ends)."""
        try:
            opened = self._finish()
        finally:
            self._close_socket()
        return self.label if opened else None

    def abort(self) -> None:
        super().abort()
        self._close_socket()


class TeeSink:
    """Writes every frame to several sinks (e.g. a UDP stream and a virtual camera); the first one plans."""

    def __init__(self, sinks: list[Sink]) -> None:
        if not sinks:
            raise ValueError("TeeSink needs at least one sink")
        self.sinks = sinks

    @property
    def encode_path(self) -> str:
        return "+".join(getattr(s, "encode_path", "cpu") for s in self.sinks)

    @property
    def packets_copied(self) -> int:
        return max(getattr(s, "packets_copied", 0) for s in self.sinks)

    @property
    def damage(self) -> object | None:
        """Pass-through packets left out, of the first sink that copies any (each sink screens the same packets)."""
        return next((s.damage for s in self.sinks if getattr(s, "damage", None) is not None), None)

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        return self.sinks[0].choose_pix_fmt(in_fmt, width, height)

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(spec, passthrough if not opened else [])  # packets go to the first sink only
                opened.append(sink)
        except BaseException:
            for sink in opened:
                sink.abort()
            raise

    def write_frame(self, frame: av.VideoFrame) -> None:
        for sink in self.sinks:
            sink.write_frame(frame)

    def write_packet(self, packet: av.Packet) -> None:
        self.sinks[0].write_packet(packet)

    def close(self, interrupted: bool = False) -> Path | str | None:
        results, errors = [], []
        for sink in self.sinks:
            try:
                results.append(sink.close(interrupted=interrupted))
            except Exception as exc:  # noqa: BLE001 - close the others before reporting
                errors.append(exc)
        if errors:
            raise errors[0]
        kept = [str(r) for r in results if r is not None]
        return ", ".join(kept) if kept else None

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()
