"""Live video: camera / network / stdin inputs, network / stdout / virtual-camera outputs, real-time drop policy.

The pieces compose as ``FrameReader -> (LatestSlot | BoundedQueue) -> model -> FrameSink`` in ``run_live``.
"""

from pipeline.live.encoding import LiveEncoderConfig
from pipeline.live.inputs import InputSpec, open_input, parse_input
from pipeline.live.latency import LatencyStats, LiveReport
from pipeline.live.loop import LiveConfig, run_live, write_stats_json
from pipeline.live.outputs import OutputSpec, parse_output
from pipeline.live.realtime import BoundedQueue, LatestSlot, Pacer
from pipeline.live.sinks import FrameSink, StreamSink, TeeSink, VirtualCameraSink
from pipeline.live.source import FrameReader, TimedFrame

__all__ = [
    "BoundedQueue", "FrameReader", "FrameSink", "InputSpec", "LatencyStats", "LatestSlot", "LiveConfig",
    "LiveEncoderConfig", "LiveReport", "OutputSpec", "Pacer", "StreamSink", "TeeSink", "TimedFrame",
    "VirtualCameraSink", "open_input", "parse_input", "parse_output", "run_live", "write_stats_json",
]
