"""Source -> FrameProcessor -> Sink with three overlapping threads and bounded queues.

decode thread: demux + decode, copy planes into a free pinned host buffer (packed Y'CbCr, 1.5 B/px
for 4:2:0) -> queue -> process thread: upload on the processor's CUDA stream, colour + model,
download into a pinned output buffer; returns at once with an event -> queue -> encode thread: waits
on the event, wraps the planes in an ``av.VideoFrame`` with the input PTS, encodes and muxes;
audio/subtitle packets ride the same queues so they reach the muxer in demux order.

Host buffers come from fixed pools allocated once; a buffer goes back to its pool when the encode
thread is done with it, so the pools also bound how far decode can run ahead.

``realtime=True`` (live inputs) replaces the decode -> process queue with a ``LatestSlot``: decode never
waits, the process thread always takes the newest frame, and frames it had no time for are dropped
(their buffers go straight back to the pool) and counted. Every run records per-frame latency from
the frame leaving the source (after pacing) to the sink returning from ``write_frame``.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable

import av
import torch
from stylize_video.errors import WORKER_PREFIX, StylizeError
from stylize_video.pipeline.buffer_pool import BufferPool
from stylize_video.pipeline.io.damage import merge
from stylize_video.pipeline.io.nvdec import dlpack_planes, wait_for_decoder
from stylize_video.pipeline.io.planes import buffer_to_frame, frame_to_buffer
from stylize_video.pipeline.io.sink import Sink, VideoSpec
from stylize_video.pipeline.io.source import PacketItem, Source, VideoItem
from stylize_video.pipeline.latency import LatencyStats
from stylize_video.pipeline.model_failure import ModelFailure, frame_name
from stylize_video.pipeline.nonfinite import NonFiniteOutput, is_nonfinite
from stylize_video.pipeline.processor import FrameProcessor
from stylize_video.pipeline.slot import LatestSlot
from stylize_video.pipeline.stats import RunStats
from stylize_video.pipeline.stopping import StopSignals

_END = object()
_POLL_S = 0.05


class Runner:
    """Runs one source through one processor into one sink. ``run()`` returns ``RunStats``."""

    def __init__(self, source: Source, processor: FrameProcessor, sink: Sink, spec: VideoSpec, *,
                 reformat: dict | None = None, queue_size: int = 4, progress: bool = True,
                 realtime: bool = False, interrupt_is_end: bool = False) -> None:
        """``realtime``: newest-frame hand-off with drops (audio/subtitles are not copied then).
        ``interrupt_is_end``: Ctrl-C is how a live input normally ends, so outputs are closed as complete."""
        self.source, self.processor, self.sink, self.spec = source, processor, sink, spec
        self.reformat = reformat
        self.progress = progress
        self.realtime = realtime
        self.interrupt_is_end = interrupt_is_end
        cfg = processor.config
        pin = processor.device.type == "cuda"
        # Enough buffers for both queues full plus one frame in each stage: the queues set the pace.
        depth = 2 * queue_size + 3
        self.in_pool = BufferPool(depth, cfg.in_layout.nbytes, pin)
        self.out_pool = BufferPool(depth, cfg.out_layout.nbytes, pin)
        processor.reserve_flag_slots(depth)  # a frame's NaN/Inf flag outlives it by at most the pool depth
        self.q_in: queue.Queue | LatestSlot = LatestSlot() if realtime else queue.Queue(maxsize=queue_size)
        # Realtime: one processed frame may wait for the encoder; more would only add latency (the slot drops instead).
        self.q_out: queue.Queue = queue.Queue(maxsize=1 if realtime else queue_size)
        self.stats = RunStats()
        self.latency = LatencyStats()
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._stops = StopSignals(source, self._abort)  # Ctrl-C / SIGTERM while run() waits
        self._done = 0
        self._decoded = 0
        self._warm = threading.Event()  # set by the process thread once the processor is warmed up

    # -- plumbing -------------------------------------------------------------------------------
    def _alive(self) -> bool:
        return not self._abort.is_set()

    def _put(self, q: queue.Queue, item: object) -> bool:
        while self._alive():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> object:
        while self._alive():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    def _hand_in(self, item: object) -> bool:
        """decode -> process. Realtime: replace a waiting frame (its buffer goes back to the pool); never waits."""
        if not self.realtime:
            return self._put(self.q_in, item)
        old = self.q_in.put(item)
        if old is not None and isinstance(old[1], torch.Tensor):
            self.in_pool.put(old[1])
        return self._alive()

    def _end_in(self) -> None:
        if self.realtime:
            self.q_in.close()  # a waiting frame is still delivered
        else:
            self._put(self.q_in, _END)

    def _take_in(self) -> object:
        if not self.realtime:
            return self._get(self.q_in)
        while self._alive():
            item = self.q_in.get(timeout=_POLL_S)
            if item is not None:
                return item
            if self.q_in.closed:  # closed while we waited: take what was put just before
                item = self.q_in.get(timeout=0)
                return _END if item is None else item
        return _END

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def wrapped() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                if self._error is None:
                    self._error = exc
                self._abort.set()
        return wrapped

    # -- stages ---------------------------------------------------------------------------------
    _last_pts: int | None = None

    def _timestamps(self, frame: av.VideoFrame) -> tuple[int | None, object, int]:
        """(pts, time_base, duration) kept for the output; a missing PTS continues from the last at the nominal rate."""
        tb = frame.time_base or self.spec.time_base
        pts = frame.pts
        if pts is None and self._last_pts is not None and self.spec.rate:
            pts = self._last_pts + max(1, round(1 / (self.spec.rate * tb)))
        elif pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + 1
        self._last_pts = pts
        return pts, tb, frame.duration

    _size_warned = False

    def _conform(self, frame: av.VideoFrame) -> av.VideoFrame:
        """A frame whose size changed mid-stream (live streams, concatenated files) scaled to the first size."""
        layout = self.processor.config.in_layout
        if frame.format.name != layout.pix_fmt:  # the packed copy would misread the planes
            raise StylizeError(f"the input's pixel format changed mid-stream from {layout.pix_fmt} to "
                               f"{frame.format.name}; this is not supported")
        if not self._size_changed(frame):
            return frame
        return frame.reformat(width=layout.width, height=layout.height)

    def _size_changed(self, frame: av.VideoFrame) -> bool:
        """True when ``frame`` is not the first frame's size (warned once; the frame is then scaled to it)."""
        layout = self.processor.config.in_layout
        if (frame.width, frame.height) == (layout.width, layout.height):
            return False
        if not self._size_warned:
            self._size_warned = True
            warnings.warn(f"frame size changed from {layout.width}x{layout.height} to {frame.width}x{frame.height} "
                          "mid-stream: scaling to the first size", stacklevel=3)
        return True

    def _decode(self) -> None:
        layout = self.processor.config.in_layout
        busy = 0.0
        t0 = time.perf_counter()
        for item in self.source:
            if isinstance(item, VideoItem):
                t_item = time.perf_counter()  # latency is measured from here (after pacing)
                index, self._decoded = self._decoded, self._decoded + 1
            if isinstance(item, VideoItem) and item.frame.format.name == "cuda":
                # NVDEC frame kept on the GPU: no host copy; the process thread imports it via DLPack.
                meta = (*self._timestamps(item.frame), index, t_item)
                busy += time.perf_counter() - t0
                if not self._hand_in(("devframe", item.frame, meta)):
                    return
            elif isinstance(item, VideoItem):
                frame = item.frame
                if self.reformat is not None:
                    frame = frame.reformat(**self.reformat)
                frame = self._conform(frame)
                busy += time.perf_counter() - t0
                buf = self.in_pool.get(self._alive)  # waiting for a free buffer is not decode work
                if buf is None:
                    return
                t0 = time.perf_counter()
                frame_to_buffer(frame, layout, buf.numpy())
                meta = (*self._timestamps(item.frame), index, t_item)
                busy += time.perf_counter() - t0
                if not self._hand_in(("frame", buf, meta)):
                    return
            elif isinstance(item, PacketItem) and not self.realtime:  # realtime: video only
                busy += time.perf_counter() - t0
                if not self._put(self.q_in, ("packet", item.packet)):
                    return
            t0 = time.perf_counter()
        self.stats.stage_s["decode"] = busy
        self._end_in()

    def _process(self) -> None:
        # Warm-up runs here, on the thread that runs the frames: torch.compile's CUDA graphs (cudagraph
        # trees) are bound to the thread that recorded them, and a recompile on another one asserts
        # (pytorch#123177); Numba / TensorRT set-up costs land here too.
        if self.processor.device.type == "cuda":
            torch.cuda.set_device(self.processor.device)
        try:
            self.stats.warmup_s = self.processor.warmup()
        except ModelFailure as failure:
            lay = self.processor.config.in_layout
            raise failure.at(f"the warm-up frame (mid-grey, {lay.width}x{lay.height})") from None
        self._warm.set()
        busy = 0.0
        while True:
            item = self._take_in()
            if item is _END:
                break
            if item[0] in ("frame", "devframe"):
                kind, payload, meta = item
                st = self.stats
                st.max_backlog = max(st.max_backlog, self._decoded - meta[3] - 1)
                out = self.out_pool.get(self._alive)
                if out is None:
                    return
                t0 = time.perf_counter()
                try:
                    event = self._run_frame(kind, payload, out, meta)
                except ModelFailure as failure:
                    raise failure.at(frame_name(*meta[:2], meta[3])) from None
                busy += time.perf_counter() - t0
                # A device frame stays alive (as the payload) until the event completes.
                item = ("frame", payload, out, meta, event, self.processor.last_nonfinite)
            if not self._put(self.q_out, item):
                return
        self.stats.stage_s["process"] = busy
        self._put(self.q_out, _END)

    def _run_frame(self, kind: str, payload: object, out: torch.Tensor, meta: tuple) -> object:
        """One decoded frame (host buffer or NVDEC frame) through the processor; its event (None on the CPU)."""
        if kind == "frame":
            return self.processor(payload, out)
        self._size_changed(payload)  # the processor scales it on the device
        try:
            planes = dlpack_planes(payload)
        except ValueError as exc:  # checked on the first frame; a later one can change (odd size)
            raise StylizeError(f"--hwdec: frame {meta[3]} cannot be imported from NVDEC ({exc}); "
                               "run without --hwdec") from None
        # FFmpeg wrote the frame on its own CUDA stream: our stream waits for it (the GPU, not the host).
        wait_for_decoder(self.processor.stream, self.processor.device)
        return self.processor.process_device_planes(planes, out)

    def _encode(self) -> None:
        layout = self.processor.config.out_layout
        busy = 0.0
        while True:
            item = self._get(self.q_out)
            if item is _END:
                break
            t0 = time.perf_counter()
            if item[0] == "packet":
                self.sink.write_packet(item[1])
            else:
                _, buf, out, (pts, time_base, duration, index, t_item), event, nonfinite = item
                if event is not None:
                    event.synchronize()  # download done; the input buffer is free again too
                    self.stats.stage_s["gpu"] = self.stats.stage_s.get("gpu", 0.0) + event.elapsed_s()
                    t0 = time.perf_counter()  # waiting for the device is not encode work
                if is_nonfinite(nonfinite):  # read after the event: the flag's copy has landed
                    seconds = float(pts * time_base) if pts is not None and time_base else None
                    raise NonFiniteOutput(index, seconds, self.processor.backend.precision)
                if isinstance(buf, torch.Tensor):
                    self.in_pool.put(buf)  # (a CUDA av.VideoFrame on the DLPack path is just released)
                frame = buffer_to_frame(out.numpy(), layout)
                self.out_pool.put(out)
                frame.pts, frame.time_base = pts, time_base
                if duration:
                    frame.duration = duration
                self.sink.write_frame(frame)
                self.latency.add(time.perf_counter() - t_item)
                self._done += 1
            busy += time.perf_counter() - t0
        self.stats.stage_s["encode"] = busy

    # -- driver ---------------------------------------------------------------------------------
    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for every started worker to return (each checks ``_abort`` between items; a model call or an
        encode in progress is finished first). Nothing of theirs may outlive ``run``: the sink is closed or
        aborted next, the backend released after, and the interpreter may exit."""
        for t in threads:
            while t.is_alive():
                t.join(timeout=_POLL_S)

    def _wait(self, threads: list[threading.Thread], bar: object) -> None:
        """Until the workers are done (or aborted), updating the progress bar."""
        shown = 0
        while any(t.is_alive() for t in threads):
            threads[-1].join(timeout=0.1)
            if bar is not None and self._done > shown:
                bar.update(self._done - shown)
                shown = self._done
            if self._abort.is_set() and not threads[-1].is_alive():
                break

    def run(self) -> RunStats:
        """Run to the end. Ctrl-C stops decoding, drains what is queued, keeps a ``.partial`` output; SIGTERM
        (from ``run_cli``) keeps what was encoded at once (``stopping``). The workers are joined before this
        returns or raises (except after a forced third signal)."""
        info = self.source.info
        st = self.stats
        st.decode_path = info.decode_path
        st.encode_path = getattr(self.sink, "encode_path", "cpu")
        b = self.processor.backend
        st.backend, st.device, st.precision = b.name, str(b.device), b.precision
        st.input_size = (info.width, info.height)
        st.output_size = (self.spec.width, self.spec.height)
        threads = [threading.Thread(target=self._guard(fn), name=f"{WORKER_PREFIX}{fn.__name__.strip('_')}",
                                    daemon=True) for fn in (self._decode, self._process, self._encode)]
        bar = None
        start = time.perf_counter()  # (set again once warmed up)
        with self._stops.installed():
            try:
                threads[1].start()  # the process thread warms up first; the clock starts once it is done
                while not self._warm.wait(timeout=_POLL_S) and threads[1].is_alive():
                    pass
                start = time.perf_counter()  # from opening the output (encoder set-up included) to its close
                if self._error is None and not self._stops.count:  # stopped during the warm-up: nothing opened
                    self.sink.open(self.spec, [] if self.realtime else list(self.source.passthrough))
                    bar = _progress_bar(info.frames, self.progress)
                    for t in (threads[0], threads[2]):
                        t.start()
                    self._wait(threads, bar)
                if self._error is not None or self._stops.count:
                    self._abort.set()  # (stopped during the warm-up: the process thread returns, not waits)
                self._join(threads)
            except BaseException:
                self._abort.set()
                if not self._stops.forced:  # (a third signal stops waiting for them)
                    self._join(threads)
                if not any(t.is_alive() for t in threads):  # (one still writing would crash under the abort)
                    self.sink.abort()
                raise
            finally:
                if bar is not None:
                    bar.close()
            interrupted = self._stops.count > 0
            if isinstance(self._error, NonFiniteOutput):  # keep what was encoded before it, like Ctrl-C
                kept = self.sink.close(interrupted=True)
                raise StylizeError(self._error.describe(str(kept) if kept is not None else None)) from None
            if self._error is not None:
                self.sink.abort()
                raise self._error
            # The encoder's drain (x264's lookahead and frame threads flush here) and the trailer belong to the run:
            # the clock stops when the output is complete, as a plain decode -> encode's does.
            t_close = time.perf_counter()
            out = self.sink.close(interrupted=interrupted and not self.interrupt_is_end)
        st.stage_s["encode"] = st.stage_s.get("encode", 0.0) + time.perf_counter() - t_close
        st.wall_s = time.perf_counter() - start
        st.frames = self._done
        st.fps = st.frames / st.wall_s if st.wall_s > 0 else 0.0
        st.corrupt_packets = self.source.stats.corrupt
        st.passthrough_packets = getattr(self.sink, "packets_copied", self.source.stats.passthrough_packets)
        st.interrupted = interrupted
        st.stop_signal = self._stops.name
        st.frames_in, st.realtime, st.paced = self._decoded, self.realtime, bool(getattr(self.source, "paced", False))
        st.dropped = self.q_in.dropped if self.realtime else 0
        st.latency_ms = self.latency.summary()
        st.output = str(out) if out is not None else None
        _report_input(st, info, self.source, self.sink)  # after close: the sink's last packets are counted
        return st


def _report_input(st: RunStats, info: object, source: Source, sink: Sink) -> None:
    """Which stream, deinterlacing, and damage per input stream (source side: decoding; sink side: muxing)."""
    st.video_stream = getattr(info, "stream", "")
    st.deinterlace = getattr(info, "deinterlace", None)
    source_log = getattr(source.stats, "damage", None)
    sink_log = getattr(sink, "damage", None)
    st.damage = merge(*(log.to_dict() for log in (source_log, sink_log) if log is not None))


def _progress_bar(total: int | None, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, leave=False, smoothing=0.1)


__all__ = ["BufferPool", "RunStats", "Runner"]
