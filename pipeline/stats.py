"""``RunStats``: the end-of-run summary of a pipeline run (terminal line and ``--stats-json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from stylize_video.pipeline.io.damage import damage_text


@dataclass
class RunStats:
    """End-of-run summary (also what ``--stats-json`` writes)."""

    frames: int = 0
    corrupt_packets: int = 0
    passthrough_packets: int = 0
    wall_s: float = 0.0  # from opening the output to closing it (encoder drain included), warm-up excluded
    warmup_s: float = 0.0  # one frame through the model before timing (compilation, graph capture)
    fps: float = 0.0
    # busy seconds per stage; they overlap, so their sum exceeds wall_s when the overlap works.
    # On CUDA "process" is host time spent queueing work and "gpu" the device time (upload..download).
    stage_s: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "process": 0.0, "encode": 0.0})
    decode_path: str = "cpu"
    encode_path: str = "cpu"
    backend: str = ""
    device: str = "cpu"
    precision: str = ""
    input_size: tuple[int, int] = (0, 0)
    output_size: tuple[int, int] = (0, 0)
    output: str | None = None
    interrupted: bool = False
    stop_signal: str | None = None  # what interrupted the run: "SIGINT" (Ctrl-C) or "SIGTERM"; None: not interrupted
    frames_in: int = 0  # video frames the source delivered
    dropped: int = 0  # replaced by a newer frame before the model took them (realtime only)
    max_backlog: int = 0  # most newer decoded frames waiting when the model took a frame (0 in realtime)
    realtime: bool = False
    paced: bool = False
    # decode -> encoded and written, per output frame: count, mean/min/p50/p95/p99/max in ms
    latency_ms: dict = field(default_factory=dict)
    video_stream: str = ""  # the input stream processed, e.g. "#0 (h264 1920x1080, default)"
    deinterlace: str | None = None  # e.g. "bwdif (frame rate)"; None: frames processed as decoded
    # damaged input per input stream ("#1 audio"): non-zero counts of stylize_video.pipeline.io.damage.StreamDamage
    damage: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        s = self.stage_s
        per = {k: (1000.0 * v / self.frames if self.frames else 0.0) for k, v in s.items()}
        return (f"{self.frames} frames in {self.wall_s:.2f} s = {self.fps:.1f} fps "
                f"({self.input_size[0]}x{self.input_size[1]} -> {self.output_size[0]}x{self.output_size[1]}); "
                f"per frame: decode {per['decode']:.1f} ms, process {per['process']:.1f} ms, "
                f"encode {per['encode']:.1f} ms" + (f", gpu {per['gpu']:.1f} ms" if "gpu" in per else "")
                + f"; backend {self.backend} on {self.device} {self.precision}; "
                f"decode {self.decode_path}, encode {self.encode_path}"
                + (f"; warm-up {self.warmup_s:.2f} s" if self.warmup_s >= 0.5 else "")
                + (f"; video stream {self.video_stream}" if self.video_stream else "")
                + (f"; deinterlaced with {self.deinterlace}" if self.deinterlace else "")
                + (f"; damaged input: {damage_text(self.damage)}" if self.damage else "")
                + (f"; realtime: {self.dropped} of {self.frames_in} frames dropped" if self.realtime else "")
                + self._latency_text())

    def _latency_text(self) -> str:
        lat = self.latency_ms
        if not lat.get("count"):
            return ""
        return f"; latency p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
