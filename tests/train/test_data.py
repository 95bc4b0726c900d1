"""Image listing/decoding and the deterministic sample stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from stylize_video.errors import StylizeError
from stylize_video.train.data import SampleStream, random_patch, resize_center_crop
from stylize_video.train.images import list_images, load_rgb, read_image, readable_images, to_rgb


def test_listing_is_recursive_and_sorted(image_folder) -> None:
    names = [p.relative_to(image_folder).as_posix() for p in list_images(image_folder)]
    assert names == sorted(names) and "sub/gray.jpg" in names and "img0.png" in names
    good, bad = readable_images(list_images(image_folder))
    assert [p.name for p in bad] == ["broken.jpg"] and len(good) == 9


def test_empty_and_missing_folder(tmp_path) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(StylizeError, match="no images under"):
        list_images(tmp_path / "empty")
    with pytest.raises(StylizeError, match="data folder not found"):
        list_images(tmp_path / "absent")


def test_modes_become_rgb(image_folder) -> None:
    gray = load_rgb(image_folder / "sub" / "gray.jpg")
    a = np.asarray(gray)
    assert gray.mode == "RGB" and (a[..., 0] == a[..., 1]).all()
    assert load_rgb(image_folder / "sub" / "cmyk.jpg").mode == "RGB"
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(transparent)).min() == 255  # composited over white, not black
    deep = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert np.asarray(to_rgb(deep)).min() == 255
    t = read_image(image_folder / "sub" / "alpha.png")
    assert t.dtype == torch.uint8 and t.shape == (3, 36, 36)


def test_unreadable_image_is_one_line_error(image_folder) -> None:
    with pytest.raises(StylizeError, match="cannot read style image") as exc:
        read_image(image_folder / "sub" / "broken.jpg", "style image")
    assert "\n" not in str(exc.value)


def test_stream_resumes_mid_run(image_folder) -> None:
    files, _ = readable_images(list_images(image_folder))
    full = SampleStream(files, random_patch(16), seed=7, start=0, length=24)
    tail = SampleStream(files, random_patch(16), seed=7, start=10, length=14)
    for j in range(14):
        assert torch.equal(full[10 + j][0], tail[j][0])
    # each epoch visits every image once
    assert sorted(full.order(0).tolist()) == list(range(len(files)))
    assert not torch.equal(full.order(0), full.order(1))
    other_seed = SampleStream(files, random_patch(16), seed=8, start=0, length=24)
    assert any(not torch.equal(full[j][0], other_seed[j][0]) for j in range(5))


def test_stream_replaces_undecodable_file(tmp_path, make_images) -> None:
    paths = make_images(tmp_path, 3)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])  # header intact, pixels truncated
    _good, bad = readable_images(paths)
    assert not bad  # only decoding finds it
    stream = SampleStream(paths, resize_center_crop(16), seed=0, start=0, length=6)
    skipped = [stream[j][1] for j in range(6)]
    assert sum(skipped) == 2  # once per epoch
    assert all(stream[j][0].shape == (3, 16, 16) for j in range(6))


def test_transforms_sizes() -> None:
    image = Image.new("RGB", (50, 30))
    assert resize_center_crop(24)(image, torch.Generator()).size == (24, 24)
    assert random_patch(40)(image, torch.Generator().manual_seed(0)).size == (40, 40)  # upscaled first
