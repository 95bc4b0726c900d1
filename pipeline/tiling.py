"""Tiled inference: frames too large for GPU memory or for a fixed-size engine, in overlapping tiles.

A frame is cut into ``size`` x ``size`` tiles (the last row and column aligned to the frame's edge, so every
tile has the same shape and several can share one batched backend call) that overlap their neighbours by
at least ``overlap`` input pixels. Each tile's output is weighted and the weights are normalised:

* a tile contributes nothing within ``overlap / 4`` of an edge it shares with a neighbour (pixels whose
  receptive field the cut clipped), and
* fades in linearly over the middle half of the overlap, where the neighbour fades out (feathered seam);
* edges on the frame's border keep full weight (the untiled model sees that border too).

So wherever ``overlap / 4`` is at least the model's receptive-field radius (in input pixels), the output
equals the untiled output (up to float rounding); with less, the seams are blended. Models with global
operations (instance norm over the whole frame in TransformerNet, attention over the image) never tile
exactly. The same weighting as chaiNNer's and vs-mlrt's overlapped tiling, written out here because it has
to run on tensors on the backend's device, batched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.sizing import WrappedBackend, with_size_rules
from stylize_video.sizerules import SizeRules

DEFAULT_OVERLAP = 32  # at most; a quarter of the tile below 128 px (``default_overlap``)
DEFAULT_BATCH = 4


def default_overlap(size: int) -> int:
    """The overlap used when none is given: 32 px, but at most a quarter of a ``size`` px tile, so small tiles
    keep three quarters of their side as stride (half would need about twice as many tiles)."""
    return min(DEFAULT_OVERLAP, size // 4)


@dataclass(frozen=True)
class TileOptions:
    """``--tile SIZE --tile-overlap PX`` (input pixels) and how many tiles go to the backend per call.

    ``overlap`` None: ``default_overlap(size)``, resolved by ``TiledBackend``; one given explicitly must be less
    than half of ``size``.
    """

    size: int
    overlap: int | None = None
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.size < 1:
            raise StylizeError(f"--tile must be >= 1 pixel, got {self.size}")
        if self.overlap is not None and self.overlap < 0:
            raise StylizeError(f"--tile-overlap must be >= 0, got {self.overlap}")
        if self.overlap is not None and 2 * self.overlap >= self.size:
            raise StylizeError(f"--tile-overlap {self.overlap} must be less than half of --tile {self.size}")
        if self.batch < 1:
            raise StylizeError(f"--tile-batch must be >= 1, got {self.batch}")


def check_fixed_tile(size: int, rules: SizeRules) -> None:
    """A model with a fixed input size takes tiles of exactly that size (smaller tiles of small frames are padded
    up to it); any other ``--tile`` is refused at load, naming the one to use."""
    if rules.fixed is None:
        return
    fh, fw = rules.fixed
    if fh != fw:
        raise StylizeError(f"this model's input size is fixed at {fw}x{fh}, not square, and tiles are square: "
                           "re-export it with dynamic height/width")
    if size != fh:
        raise StylizeError(f"--tile {size} does not fit this model's fixed input size {fw}x{fh}: use --tile {fh}")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with >= ``overlap`` pixels shared between
    neighbours; the last tile ends at ``length``. One tile (offset 0) when ``tile >= length``."""
    if tile >= length:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def edge_weights(starts: list[int], tile: int, scale: int) -> list[torch.Tensor]:
    """Per tile, a (tile * scale,) float32 weight: 0 within a quarter of each shared overlap from the cut edge,
    a linear ramp over the middle half, 1 elsewhere and along the frame's border (no overlap: a hard seam)."""
    out = []
    pos = torch.arange(tile * scale, dtype=torch.float32) + 0.5  # output pixel centres, from the tile's start
    for i, start in enumerate(starts):
        w = torch.ones(tile * scale)
        if i > 0 and (ov := (starts[i - 1] + tile - start) * scale) > 0:  # edge shared with the previous tile
            w = torch.minimum(w, ((pos - ov / 4) / (ov / 2)).clamp(0, 1))
        if i < len(starts) - 1 and (ov := (start + tile - starts[i + 1]) * scale) > 0:  # ... with the next one
            w = torch.minimum(w, ((tile * scale - pos - ov / 4) / (ov / 2)).clamp(0, 1))
        out.append(w)
    return out


class TiledBackend(WrappedBackend):
    """``inner`` (size rules applied) run tile by tile, several tiles per call; same contract as any backend."""

    def __init__(self, inner: Backend, options: TileOptions) -> None:
        super().__init__(with_size_rules(inner))
        rules = getattr(self.inner, "size_rules", None) or SizeRules()
        size = options.size
        check_fixed_tile(size, rules)
        if size < rules.minimum:
            raise StylizeError(f"--tile {size} is smaller than this model's minimum input side of {rules.minimum} "
                               f"({rules.describe()})")
        if size % rules.multiple_of:
            size -= size % rules.multiple_of  # a tile the network takes without padding
            warnings.warn(f"--tile {options.size} rounded down to {size}, a multiple of {rules.multiple_of} "
                          f"as this model needs", stacklevel=2)
        batch = min(options.batch, self.inner.max_batch or options.batch)
        overlap = default_overlap(size) if options.overlap is None else options.overlap
        self.options = TileOptions(size, min(overlap, (size - 1) // 2), max(1, batch))
        tiling = getattr(getattr(self.inner, "info", None), "tiling", "supported")
        if tiling != "supported":
            warnings.warn(f"spandrel marks this architecture's tiling as {tiling}: it uses whole-image context, "
                          f"so tiles may show seams", stacklevel=2)
        self._weights: dict[tuple[int, int], tuple] = {}  # per frame size: tile positions, weights, normaliser

    size_rules = property(lambda self: self.inner.size_rules)  # type: ignore[assignment]

    def tile_shape(self, height: int, width: int) -> tuple[int, int]:
        return min(self.options.size, height), min(self.options.size, width)

    def _layout(self, h: int, w: int) -> tuple[int, int, list[int], list[int]]:
        th, tw = self.tile_shape(h, w)
        return th, tw, tile_starts(h, th, self.options.overlap), tile_starts(w, tw, self.options.overlap)

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Refuse, before any work, frames whose tiles the inner backend cannot take."""
        th, tw, ys, xs = self._layout(int(shape[-2]), int(shape[-1]))
        check = getattr(self.inner, "check_input", None)
        if check is not None:
            check((min(self.options.batch, int(shape[0]) * len(ys) * len(xs)), *shape[1:-2], th, tw))

    def _plan(self, h: int, w: int, device: torch.device) -> tuple:
        """(tile h, tile w, scale, [(y, x, weight (th*s, tw*s))], normaliser (h*s, w*s)) for one frame size."""
        if (h, w) not in self._weights:
            th, tw, ys, xs = self._layout(h, w)
            s = self.inner.scale or 1
            wy, wx = edge_weights(ys, th, s), edge_weights(xs, tw, s)
            tiles = [(y, x, (wy[i][:, None] * wx[j][None, :]).to(device))
                     for i, y in enumerate(ys) for j, x in enumerate(xs)]
            norm = torch.zeros((h * s, w * s), dtype=torch.float32, device=device)
            for y, x, wt in tiles:
                norm[y * s:(y + th) * s, x * s:(x + tw) * s] += wt
            self._weights[(h, w)] = (th, tw, s, tiles, norm)
        return self._weights[(h, w)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        th, tw, s, tiles, norm = self._plan(int(h), int(w), x.device)
        if len(tiles) == 1:
            return self.inner(x)
        out = torch.zeros((n, c, h * s, w * s), dtype=torch.float32, device=x.device)
        jobs = [(k, y, xx, wt) for k in range(n) for (y, xx, wt) in tiles]
        for first in range(0, len(jobs), self.options.batch):
            chunk = jobs[first:first + self.options.batch]
            y_batch = self.inner(torch.stack([x[k, :, y:y + th, xx:xx + tw] for k, y, xx, _ in chunk]))
            for (k, y, xx, wt), y_tile in zip(chunk, y_batch):
                out[k, :, y * s:(y + th) * s, xx * s:(xx + tw) * s] += y_tile.float() * wt
        return out / norm
