"""Perceptual losses: hand-computed values, VGG layers/channels/truncation, weight sources."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.train.losses import (
    LAYER_CHANNELS,
    PerceptualConfig,
    PerceptualLoss,
    VGGFeatures,
    feature_reconstruction_loss,
    gram_matrix,
    layer_names,
    load_vgg_weights,
    pixel_loss,
    style_reconstruction_loss,
    total_variation,
)
from stylize_video.train.losses.vgg import IMAGENET_MEAN, IMAGENET_STD


def random_vgg(arch: str, layers: list[str]) -> VGGFeatures:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM VGG"):
        return load_vgg_weights(VGGFeatures(arch, layers), "random")


# ---- hand computations on tiny tensors -------------------------------------------------------

def test_gram_matrix_by_hand() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_feature_loss_by_hand() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    # ||a - 0||^2 / (C H W) = 30 / 4
    assert feature_reconstruction_loss(a, torch.zeros_like(a)).item() == pytest.approx(7.5)


def test_style_loss_by_hand() -> None:
    g_out = torch.stack([torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)])
    target = torch.zeros(1, 2, 2)
    # per image: squared Frobenius 30 and 0; batch mean 15; the single target broadcasts
    assert style_reconstruction_loss(g_out, target).item() == pytest.approx(15.0)


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    # vertical diffs 3, 4 -> mean sq 12.5; horizontal diffs 1, 2 -> 2.5
    assert total_variation(x).item() == pytest.approx(15.0)


def test_pixel_loss_by_hand() -> None:
    out, target = torch.full((1, 3, 2, 2), 51.0), torch.zeros(1, 3, 2, 2)
    assert pixel_loss(out, target).item() == pytest.approx(0.04)


def test_perceptual_loss_terms_are_weighted_sums() -> None:
    torch.manual_seed(0)
    cfg = PerceptualConfig(content_layers={"relu2_2": 2.0}, style_layers={"relu1_2": 0.5, "relu2_2": 0.25},
                           content_weight=3.0, style_weight=7.0, tv_weight=0.1, pixel_weight=0.2)
    with pytest.warns(UserWarning):
        loss = PerceptualLoss(cfg, "random")
    style, out, content = (torch.rand(n, 3, 20, 20) * 255 for n in (1, 2, 2))
    loss.set_style(style)
    with torch.no_grad():
        terms = loss(out, content)
        fo, fc, fs = loss.vgg(out), loss.vgg(content), loss.vgg(style)
    content_expected = 3.0 * 2.0 * feature_reconstruction_loss(fo["relu2_2"], fc["relu2_2"])
    style_expected = 7.0 * sum(w * style_reconstruction_loss(gram_matrix(fo[n]), gram_matrix(fs[n]))
                               for n, w in (("relu1_2", 0.5), ("relu2_2", 0.25)))
    assert terms["content"].item() == pytest.approx(content_expected.item(), rel=1e-5)
    assert terms["style"].item() == pytest.approx(style_expected.item(), rel=1e-5)
    assert terms["tv"].item() == pytest.approx(0.1 * total_variation(out).item(), rel=1e-5)
    assert terms["pixel"].item() == pytest.approx(0.2 * pixel_loss(out, content).item(), rel=1e-5)
    parts = sum(terms[k] for k in ("content", "style", "tv", "pixel"))
    assert terms["total"].item() == pytest.approx(parts.item(), rel=1e-6)


def test_pixel_only_loss_builds_no_vgg() -> None:
    cfg = PerceptualConfig(content_layers={}, style_layers={}, content_weight=0, style_weight=0, tv_weight=0,
                           pixel_weight=1.0)
    loss = PerceptualLoss(cfg, "imagenet")  # would need a download if a VGG were built
    assert loss.vgg is None and set(loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))) == {"pixel", "total"}


# ---- VGG feature extractor -------------------------------------------------------------------

def test_vgg16_channels_and_shapes() -> None:
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    vgg = random_vgg("vgg16", layers)
    with torch.no_grad():
        feats = vgg(torch.rand(1, 3, 32, 32) * 255)
    assert [feats[n].shape[1] for n in layers] == [64, 128, 256, 512, 512]
    assert [feats[n].shape[-1] for n in layers] == [32, 16, 8, 4, 2]
    assert [LAYER_CHANNELS["vgg16"][n] for n in layers] == [64, 128, 256, 512, 512]


def test_vgg19_layers_by_name() -> None:
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2", "conv3_4"]
    vgg = random_vgg("vgg19", layers)
    assert len(vgg.features) == 30  # relu5_1 is features[29]
    with torch.no_grad():
        feats = vgg(torch.rand(1, 3, 16, 16) * 255)
    assert [feats[n].shape[1] for n in layers] == [64, 128, 256, 512, 512, 512, 256]


def test_layer_indices_match_torchvision() -> None:
    from torchvision.models.vgg import cfgs, make_layers

    for arch, cfg in (("vgg16", "D"), ("vgg19", "E")):
        ours = VGGFeatures(arch, [layer_names(arch)[-1]]).features.state_dict()
        theirs = make_layers(cfgs[cfg]).state_dict()
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_extractor_stops_at_deepest_layer() -> None:
    vgg = random_vgg("vgg16", ["relu1_2", "relu2_2"])
    assert len(vgg.features) == layer_names("vgg16").index("relu2_2") + 1 == 9
    calls: list[int] = []
    for i, m in enumerate(vgg.features):
        m.register_forward_hook(lambda *_a, i=i: calls.append(i))
    with torch.no_grad():
        vgg(torch.rand(1, 3, 16, 16) * 255, ["relu1_2"])  # a shallower subset stops earlier still
    assert calls == [0, 1, 2, 3]


def test_extractor_is_frozen_and_normalises_inside() -> None:
    vgg = random_vgg("vgg16", ["conv1_1"])
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(1, 3, 8, 8) * 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = vgg.features[0]((x / 255 - mean) / std)
    with torch.no_grad():
        assert torch.allclose(vgg(x)["conv1_1"], expected, atol=1e-5)


def test_unknown_layer() -> None:
    with pytest.raises(ValueError, match="relu9_9"):
        VGGFeatures("vgg16", ["relu9_9"])


# ---- weight sources --------------------------------------------------------------------------

def test_weights_from_state_dict_file(tmp_path) -> None:
    torch.manual_seed(1)
    src = VGGFeatures("vgg16", ["relu2_2"]).features
    for p in src.parameters():
        torch.nn.init.normal_(p)
    # torchvision layout: "features.N.weight" (a classifier key is ignored)
    sd = {f"features.{k}": v for k, v in src.state_dict().items()} | {"classifier.0.bias": torch.zeros(3)}
    torch.save(sd, tmp_path / "vgg16.pth")
    vgg = load_vgg_weights(VGGFeatures("vgg16", ["relu2_2"]), str(tmp_path / "vgg16.pth"))
    assert all(torch.equal(a, b) for a, b in zip(vgg.features.state_dict().values(), src.state_dict().values()))


def test_weights_file_missing_layers(tmp_path) -> None:
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, tmp_path / "w.pth")
    with pytest.raises(StylizeError, match=r"missing keys: features\.2\.weight"):
        load_vgg_weights(VGGFeatures("vgg16", ["relu2_2"]), str(tmp_path / "w.pth"))


def test_no_vgg_weights_available(tmp_path, monkeypatch) -> None:
    """Empty hub cache and no network: one clear error naming the URL, the cache path and --vgg-weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(StylizeError) as exc:
        load_vgg_weights(VGGFeatures("vgg16", ["relu2_2"]), "imagenet")
    msg = str(exc.value)
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth") in msg
    assert "--vgg-weights PATH" in msg and "\n" not in msg


def test_imagenet_weights_come_from_hub_cache(tmp_path, monkeypatch) -> None:
    """With the file in $TORCH_HOME/hub/checkpoints the torchvision loader never touches the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    cached = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    cached.parent.mkdir(parents=True)
    sd = {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.randn(64),
          "features.2.weight": torch.randn(64, 64, 3, 3), "features.2.bias": torch.randn(64)}
    torch.save(sd, cached)
    vgg = load_vgg_weights(VGGFeatures("vgg16", ["relu1_2"]), "imagenet")
    assert torch.equal(vgg.features[2].weight, sd["features.2.weight"])


def test_weights_path_not_found(tmp_path) -> None:
    with pytest.raises(StylizeError, match="VGG weights file not found"):
        load_vgg_weights(VGGFeatures("vgg16", ["relu1_2"]), str(tmp_path / "none.pth"))


def test_gram_stays_float32_under_autocast():
    from stylize_video.train.losses.gram import gram_matrix

    # Activations this large overflow an fp16/bf16-precision sum; the Gram matrix must not be computed in it.
    f = torch.full((1, 2, 64, 64), 300.0)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    assert torch.allclose(g, torch.full((1, 2, 2), 300.0**2 * 64 * 64 / (2 * 64 * 64)))


def test_min_input_side_counts_poolings_before_the_deepest_layer() -> None:
    from stylize_video.train.losses.vgg import min_input_side

    assert min_input_side("vgg16", ["relu1_2"]) == 1
    assert min_input_side("vgg16", ["relu1_2", "relu4_3", "relu2_2"]) == 8
    assert min_input_side("vgg19", ["relu5_1"]) == 16
