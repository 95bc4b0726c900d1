"""Pass-through packets the output muxer would refuse: dropped and counted, never the end of the run.

A damaged input hands the demuxer audio / subtitle packets that no muxer takes: no timestamp at all,
a DTS that goes backwards (or repeats, where the muxer wants strictly increasing DTS), a PTS before
its DTS, no payload, or a payload no real audio frame or cue has (a damaged length field). Muxed as
they are, ``av_interleaved_write_frame`` fails with EINVAL / "Invalid data" and the whole output is
lost. ``PacketGuard`` checks each packet against the rules of libavformat/mux.c
(``compute_muxer_pkt_fields``: DTS compared in the output stream's time base, strictly unless the
muxer is ``AVFMT_TS_NONSTRICT``); a packet that passes the checks and is still refused (a bitstream
filter finding it damaged, e.g. ADTS AAC into MP4) is dropped as well. Each drop is counted per input
stream (``StreamDamage.packets_dropped``) and the first one per stream is warned about.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import av
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.passthrough import describe

_TS_NONSTRICT = 0x20000  # AVFMT_TS_NONSTRICT (libavformat/avformat.h)
# Larger than any audio frame or subtitle cue a real file holds (7.1 float PCM at 192 kHz is 6 MiB/s,
# muxed in packets of well under a second): a bigger one is a damaged length field.
MAX_PASSTHROUGH_BYTES = 8 << 20
# errors that end the run even for a pass-through packet (disk full, I/O, memory); any other muxer error
# (EINVAL, AVERROR_INVALIDDATA, AVERROR_PATCHWELCOME from aac_adtstoasc on an odd ADTS header, ...) refuses
# the packet only
_FATAL = (OSError, MemoryError)


def _rescale(ts: int, src: Fraction, dst: Fraction) -> int:
    return round(ts * src / dst)


class PacketGuard:
    """Screens the pass-through packets muxed into ``container``; counts drops in ``damage``."""

    def __init__(self, container: av.container.OutputContainer, damage: DamageLog, label: str) -> None:
        self.container, self.damage, self.label = container, damage, label
        self.strict = not container.format.flags & _TS_NONSTRICT
        self._last: dict[int, tuple[int, Fraction]] = {}  # output stream index -> last (dts, time base)
        self._warned: set[int] = set()

    def _reason(self, packet: av.Packet, source: av.stream.Stream) -> str | None:
        if not packet.size:
            return "no payload"
        if source.disposition & av.stream.Disposition.attached_pic:
            return None  # cover art: one still image, untimed (the muxer stores it apart)
        if packet.size > MAX_PASSTHROUGH_BYTES:
            return f"{packet.size} bytes, more than any real packet"
        if packet.pts is None and packet.dts is None:
            return "no timestamp"
        if packet.pts is not None and packet.dts is not None and packet.pts < packet.dts:
            return "presentation before decoding time"
        last = self._last.get(packet.stream.index)
        if last is not None and packet.time_base is not None:
            out_tb = packet.stream.time_base  # final once the header is written (before any second packet)
            dts = packet.dts if packet.dts is not None else packet.pts
            now, before = _rescale(dts, packet.time_base, out_tb), _rescale(last[0], last[1], out_tb)
            if now < before or (self.strict and now == before):
                return "timestamp out of order"
        return None

    def mux(self, packet: av.Packet, source: av.stream.Stream) -> bool:
        """Mux ``packet`` (already targeted at its output stream; ``source`` is the input stream it came
        from) unless the muxer would refuse it; True when written."""
        reason = self._reason(packet, source)
        # read before muxing: the muxer takes the packet's data and rescales its timestamps
        index, tb = packet.stream.index, packet.time_base
        dts = packet.dts if packet.dts is not None else packet.pts
        if reason is None:
            try:
                self.container.mux_one(packet)
            except av.error.FFmpegError as exc:
                if isinstance(exc, _FATAL):
                    raise
                reason = f"refused by the muxer: {exc.strerror or exc}"
        if reason is not None:
            self._drop(source, reason)
            return False
        if tb is not None and dts is not None:
            self._last[index] = (dts, tb)
        return True

    def _drop(self, source: av.stream.Stream, reason: str) -> None:
        self.damage.of(source).packets_dropped += 1
        if source.index not in self._warned:
            self._warned.add(source.index)
            warnings.warn(f"{describe(source)}: a damaged packet ({reason}) is left out of {self.label}; further "
                          "ones are left out too and counted in the summary", stacklevel=3)
