"""Input/output spec parsing, protocol discovery and the low-latency encoder presets."""

from __future__ import annotations

import av
import pytest
from av.video.frame import PictureType
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.live import encoding
from stylize_video.pipeline.live.encoding import live_encoder, pick_codec
from stylize_video.pipeline.live.inputs import LIVE_DEMUX_OPTIONS, parse_input
from stylize_video.pipeline.live.outputs import OutputSpec, parse_output
from stylize_video.pipeline.live.protocols import ffmpeg_protocols, has_format, has_protocol
from stylize_video.pipeline.live.sinks import StreamSink
from stylize_video.pipeline.synth import make_test_clip


class TestInputs:
    def test_file_and_stdin(self, flat_clip):
        spec = parse_input(str(flat_clip))
        assert (spec.kind, spec.live, spec.format) == ("file", False, None)
        spec = parse_input("-", input_format="mpegts")
        assert (spec.kind, spec.target, spec.format, spec.live) == ("stdin", "pipe:0", "mpegts", False)

    @pytest.mark.skipif(not has_format("video4linux2"), reason="FFmpeg build without video4linux2")
    def test_v4l2_device_with_options(self):
        spec = parse_input("v4l2:/dev/video0?video_size=1280x720&framerate=30", options={"input_format": "mjpeg"})
        assert (spec.kind, spec.target, spec.format, spec.live) == ("device", "/dev/video0", "video4linux2", True)
        assert spec.options == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}

    def test_device_not_in_this_build(self):
        if has_format("dshow"):
            pytest.skip(reason="this FFmpeg has dshow (Windows), so the refusal cannot be shown")
        with pytest.raises(StylizeError, match="no dshow device"):
            parse_input("dshow:video=Integrated Camera")

    def test_network_low_latency_options(self):
        spec = parse_input("udp://127.0.0.1:1234", options={"probesize": "32"})
        assert (spec.kind, spec.format, spec.live, spec.scheme) == ("network", "mpegts", True, "udp")
        assert spec.options["overrun_nonfatal"] == "1" and spec.options["probesize"] == "32"
        assert spec.options["flags"] == LIVE_DEMUX_OPTIONS["flags"]
        assert parse_input("rtsp://cam.local/stream").options["rtsp_transport"] == "tcp"
        assert parse_input("tcp://127.0.0.1:9000?listen").listens
        assert not parse_input("http://example.com/a.mp4").live

    @pytest.mark.parametrize(("spec", "match"), [
        ("missing.mp4", "input not found"),
        ("gopher://x/y", "unsupported input URL scheme"),
        ("v4l2:", "missing device"),
    ])
    def test_exception(self, spec, match):
        with pytest.raises(StylizeError, match=match):
            parse_input(spec)

    def test_srt_missing_is_explained(self):
        if has_protocol("srt", output=False) is not False:
            pytest.skip(reason="this FFmpeg build has srt (or cannot be queried)")
        with pytest.raises(StylizeError, match="no srt:// protocol.*libsrt"):
            parse_input("srt://127.0.0.1:9000?mode=listener")


class TestOutputs:
    @pytest.mark.parametrize(("url", "fmt"), [
        ("udp://127.0.0.1:1234", "mpegts"), ("tcp://127.0.0.1:1234?listen", "mpegts"),
        ("rtmp://127.0.0.1/live/key", "flv"), ("rtsp://127.0.0.1:8554/s", "rtsp")])
    def test_container_from_scheme(self, url, fmt):
        spec = parse_output(url)
        assert (spec.kind, spec.format, spec.live) == ("network", fmt, True)

    def test_udp_packet_size_and_overrides(self):
        assert parse_output("udp://127.0.0.1:1234").target.endswith("?pkt_size=1316")
        assert parse_output("udp://127.0.0.1:1234?pkt_size=188").target.count("pkt_size") == 1
        assert parse_output("udp://127.0.0.1:1234", output_format="nut").format == "nut"
        assert parse_output("rtmp://h/app/key").options["flvflags"] == "no_duration_filesize"

    def test_stdout_and_file(self, tmp_path):
        assert (parse_output("-").target, parse_output("-").format) == ("pipe:1", "mpegts")
        assert parse_output("-", output_format="nut").format == "nut"
        spec = parse_output(str(tmp_path / "out.mp4"))
        assert (spec.kind, spec.live, spec.format) == ("file", False, None)  # FileSink picks the muxer

    @pytest.mark.parametrize(("spec", "fmt", "match"), [
        ("-", "mp4", "cannot stream to stdout"), ("udp://h:1", "nosuchformat", "unknown output format"),
        ("ftp://h/x", None, "unsupported output URL scheme"), ("noext", None, "without an extension"),
        ("/nonexistent-dir/o.mp4", None, "output folder does not exist")])
    def test_exception(self, spec, fmt, match):
        with pytest.raises(StylizeError, match=match):
            parse_output(spec, output_format=fmt)


def test_protocol_discovery():
    names = ffmpeg_protocols(False)
    if names is None:
        pytest.skip(reason="libavformat could not be located for ctypes on this platform")
    assert {"udp", "tcp", "file", "rtmp"} <= names
    assert has_protocol("udp", output=True) is True


class TestEncoding:
    def test_x264_low_latency(self):
        enc = live_encoder(EncoderOptions(codec="libx264"), rate=30.0)
        assert (enc.extra["tune"], enc.extra["bf"], enc.gop, enc.extra["preset"]) == ("zerolatency", "0", 30, "veryfast")
        enc = live_encoder(EncoderOptions(codec="h264_nvenc", bitrate="4M", gop=10), rate=25.0)
        assert (enc.extra["tune"], enc.extra["zerolatency"], enc.gop, enc.extra["maxrate"]) == ("ull", "1", 10, "4000000")
        user = live_encoder(EncoderOptions(codec="libx264", preset="ultrafast", extra={"tune": "film"}), rate=25)
        assert user.preset == "ultrafast" and user.extra["tune"] == "film"  # the user's choices win

    def test_auto_codec(self):
        expect = "h264_nvenc" if encoding.encoder_opens("h264_nvenc") else "libx264"
        assert pick_codec(None, prefer_gpu=True) == expect
        assert pick_codec("auto", prefer_gpu=False) == "libx264"

    def test_exception(self):
        with pytest.raises(StylizeError, match="FLV/RTMP carries H.264 only"):
            pick_codec("libx265", prefer_gpu=False, container_format="flv")
        if encoding.encoder_opens("h264_nvenc"):
            pytest.skip("NVENC works here")
        with pytest.raises(StylizeError, match="cannot open on this machine"):
            pick_codec("h264_nvenc", prefer_gpu=True)

    def test_encoded_stream_has_no_b_frames_and_short_gop(self, tmp_path, live):
        path = tmp_path / "x.ts"
        clip = make_test_clip(tmp_path / "c.mp4", frames=12, audio=False, colorspace="bt601")
        sink = StreamSink(OutputSpec("network", str(path), "mpegts"), EncoderOptions(codec="libx264", gop=5))
        live.run(FileSource(clip), sink, live.Negate())
        with av.open(str(path)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == 12
        assert all(int(f.pict_type) != int(PictureType.B) for f in frames)
        assert [i for i, f in enumerate(frames) if f.key_frame] == [0, 5, 10]
        assert frames[0].colorspace == 6  # the input's BT.601 (SMPTE 170M) tag, carried


def test_odd_frame_size_is_padded_to_even(tmp_path, live):
    """4:2:0 needs even sizes: an odd stream is sent 4:2:0 one pixel larger, the edge repeated (with a warning),
    rather than failing, cropping, or 4:4:4 that players refuse."""
    clip = make_test_clip(tmp_path / "odd.mkv", width=63, height=47, pix_fmt="yuv444p", frames=3, audio=False)
    path = tmp_path / "odd.ts"
    with pytest.warns(UserWarning, match="odd frame size"):
        live.run(FileSource(clip), StreamSink(OutputSpec("network", str(path), "mpegts")), live.Negate())
    with av.open(str(path)) as c:
        assert [(f.width, f.height, f.format.name) for f in c.decode(video=0)] == [(64, 48, "yuv420p")] * 3
