"""Read a video stream's colour description (matrix, range, primaries, transfer) and guess the gaps.

FFmpeg reports these as AVColorSpace / AVColorRange / AVColorPrimaries / AVColorTransferCharacteristic
integers (ISO/IEC 23091-2 code points). Frames are more reliable than the codec context (some
containers only tag the bitstream), so the first decoded frame wins over the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

# AVColorSpace code point -> matrix name used by stylize_video.pipeline.colour
MATRIX_OF_SPACE: dict[int, str] = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# matrix name -> AVColorSpace code point we tag when the input had none
SPACE_OF_MATRIX: dict[str, int] = {"bt709": 1, "fcc": 4, "bt601": 6, "smpte240m": 7, "bt2020": 9}
# matrix name -> swscale's colourspace name (PyAV ``reformat(src_colorspace=...)``): coefficients stated, never its default
SWS_SPACE: dict[str, str] = {"bt601": "smpte170m", "bt709": "itu709", "bt2020": "bt2020", "fcc": "fcc",
                             "smpte240m": "smpte240m"}
UNSPECIFIED = 2  # same code point for colorspace, primaries and trc
RANGE_TV, RANGE_PC = 1, 2
# Guess threshold (VideoJaNai, nunif, mpv): SD is BT.601, HD and above BT.709.
HD_LINES = 720


@dataclass(frozen=True)
class ColourInfo:
    """Colour description of a Y'CbCr stream; also what the output is tagged with."""

    matrix: str  # "bt601" | "bt709" | "bt2020" | "fcc" | "smpte240m"
    full_range: bool
    colorspace: int  # AVColorSpace written to the output (never "unspecified")
    primaries: int  # AVColorPrimaries, copied (2 = unspecified)
    trc: int  # AVColorTransferCharacteristic, copied
    matrix_guessed: bool = False
    range_guessed: bool = False

    @property
    def range_code(self) -> int:
        return RANGE_PC if self.full_range else RANGE_TV

    @property
    def sws(self) -> tuple[str, str]:
        """(colourspace, range) as swscale names: e.g. ``("itu709", "MPEG")``."""
        return SWS_SPACE.get(self.matrix, "itu709"), "JPEG" if self.full_range else "MPEG"

    def describe(self) -> str:
        """e.g. ``bt709 tv`` or ``bt601 (guessed) tv``."""
        m = self.matrix + (" (guessed)" if self.matrix_guessed else "")
        r = ("pc" if self.full_range else "tv") + (" (guessed)" if self.range_guessed else "")
        return f"{m} {r}"


def _code(value: object) -> int:
    """Enum or int -> int; None -> unspecified."""
    if value is None:
        return UNSPECIFIED
    return int(getattr(value, "value", value))


def guess_matrix(height: int) -> str:
    """BT.601 below 720 lines, BT.709 at or above."""
    return "bt709" if height >= HD_LINES else "bt601"


def colour_info(colorspace: object, color_range: object, primaries: object, trc: object, *,
                height: int, pix_fmt: str) -> ColourInfo:
    """Build a ``ColourInfo`` from FFmpeg code points, guessing what is unspecified.

    ``pix_fmt`` matters for the range: the deprecated ``yuvj*`` formats mean full range.
    """
    space = _code(colorspace)
    matrix = MATRIX_OF_SPACE.get(space)
    matrix_guessed = matrix is None
    if matrix is None:
        matrix = guess_matrix(height)
    rng = _code(color_range)
    range_guessed = rng not in (RANGE_TV, RANGE_PC)
    full = rng == RANGE_PC or (range_guessed and pix_fmt.startswith("yuvj"))
    if range_guessed and pix_fmt.startswith("yuvj"):
        range_guessed = False
    return ColourInfo(matrix=matrix, full_range=full, colorspace=space if not matrix_guessed else SPACE_OF_MATRIX[matrix],
                      primaries=_code(primaries), trc=_code(trc), matrix_guessed=matrix_guessed,
                      range_guessed=range_guessed)


def colour_info_of(frame: object, stream_cc: object | None = None) -> ColourInfo:
    """``ColourInfo`` of a decoded ``av.VideoFrame``, falling back to the codec context's tags."""

    def pick(name: str) -> object:
        v = _code(getattr(frame, name, None))
        if v in (UNSPECIFIED, 0) and stream_cc is not None:
            v2 = _code(getattr(stream_cc, name, None))
            if v2 not in (UNSPECIFIED, 0):
                return v2
        return v

    fmt = getattr(frame, "format", None)
    pix_fmt = getattr(fmt, "name", "") or ""
    return colour_info(pick("colorspace"), pick("color_range"), pick("color_primaries"), pick("color_trc"),
                       height=int(frame.height), pix_fmt=pix_fmt)
