"""Training samples as a deterministic stream: resume needs only the number of samples seen.

Sample ``k`` (0, 1, 2, ... over the whole run) is image ``order(epoch)[k % n]`` with
``epoch = k // n``; each epoch's order is a permutation seeded by (seed, epoch) and each sample's
random crop by (seed, k). Nothing depends on worker count or on earlier samples, so a run resumed
at sample ``k`` sees exactly what the uninterrupted run saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from stylize_video.errors import StylizeError
from stylize_video.train.images import DECODE_ERRORS, load_rgb, to_tensor
from torch.utils.data import Dataset

Transform = Callable[[Image.Image, torch.Generator], Image.Image]


def _mix(seed: int, k: int, stream: int) -> int:
    # splitmix-style mixing so nearby (seed, k) pairs give unrelated generator seeds.
    z = (seed * 0x9E3779B97F4A7C15 + k * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) % (1 << 64)
    z = ((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    return (z ^ (z >> 29)) % (1 << 63)


@dataclass
class DataState:
    """What a checkpoint records about the data stream (primitives only)."""

    seed: int
    batch_size: int
    num_images: int
    samples_seen: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def resize_center_crop(size: int) -> Transform:
    """Scale the shorter side to ``size`` (bicubic, antialiased), then crop the centre ``size`` x ``size``."""

    def apply(image: Image.Image, _: torch.Generator) -> Image.Image:
        w, h = image.size
        s = size / min(w, h)
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        return image.crop((left, top, left + size, top + size))

    return apply


def random_patch(size: int) -> Transform:
    """A random ``size`` x ``size`` crop; images with a shorter side below ``size`` are scaled up first."""

    def apply(image: Image.Image, gen: torch.Generator) -> Image.Image:
        w, h = image.size
        if min(w, h) < size:
            s = size / min(w, h)
            w, h = max(size, round(w * s)), max(size, round(h * s))
            image = image.resize((w, h), Image.Resampling.BICUBIC)
        left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        return image.crop((left, top, left + size, top + size))

    return apply


class SampleStream(Dataset):
    """Samples ``start .. start + length - 1`` of the stream; item = ((3, S, S) uint8, skipped count).

    A file that fails to decode is replaced by the next image of the same epoch order and counted.
    """

    def __init__(self, files: list[Path], transform: Transform, seed: int, start: int, length: int) -> None:
        self.files, self.transform, self.seed = list(files), transform, seed
        self.start, self.length = start, length
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.length

    def order(self, epoch: int) -> torch.Tensor:
        """Permutation of image indices for ``epoch`` (cached for the current epoch)."""
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(_mix(self.seed, epoch, 1))
            self._epoch, self._order = epoch, torch.randperm(len(self.files), generator=gen)
        return self._order

    def __getitem__(self, j: int) -> tuple[torch.Tensor, int]:
        k = self.start + j
        n = len(self.files)
        epoch, pos = divmod(k, n)
        order = self.order(epoch)
        gen = torch.Generator().manual_seed(_mix(self.seed, k, 2))
        for skipped in range(n):
            path = self.files[int(order[(pos + skipped) % n])]
            try:
                image = load_rgb(path)
            except DECODE_ERRORS:  # truncated/corrupt pixel data shows only at decode time: use the next
                pass
            else:
                return to_tensor(self.transform(image, gen)), skipped
        raise StylizeError(f"no image under the data folder could be decoded ({n} file(s) tried; their "
                           f"headers parse but the pixel data is corrupt or truncated)")
