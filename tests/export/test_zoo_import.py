"""Pretrained styles: registry integrity, hash-checked atomic downloads (file:// URLs, no network), and
importing a fixed-size opset-9 zoo-style graph into TransformerNet by structure."""

from __future__ import annotations

import io
import re
import warnings
import zipfile

import numpy as np
import onnx
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export import registry
from stylize_video.export.download import fetch_file
from stylize_video.export.metadata import file_sha256
from stylize_video.export.zoo_import import import_zoo_model, zoo_state_dict
from stylize_video.train.checkpoint import load_model


def test_zoo_like_graph_is_fixed_opset9(zoo_like):
    proto = onnx.load_from_string(zoo_like[1])
    assert proto.opset_import[0].version == 9
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 224, 224]
    assert any(n.op_type == "Upsample" for n in proto.graph.node)


def test_import_reproduces_the_graph(zoo_like):
    net, blob = zoo_like
    imported, err = import_zoo_model(onnx.load_from_string(blob))
    assert err <= 0.05
    ours = net.state_dict()
    for key, value in imported.state_dict().items():
        assert torch.equal(value, ours[key]), key


def test_exception_not_a_transformer_net():
    from stylize_video.train.networks import SRNet

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SRNet(2).eval(), (torch.rand(1, 3, 16, 16),), buf, dynamo=False, opset_version=17)
    with pytest.raises(StylizeError, match="not a fast_neural_style TransformerNet graph"):
        zoo_state_dict(onnx.load_from_string(buf.getvalue()))


def test_registry_entries_are_pinned():
    assert {m.style for m in registry.ZOO} == {"mosaic", "candy", "rain-princess", "udnie", "pointilism"}
    for m in registry.ZOO:
        assert re.fullmatch(r"[0-9a-f]{64}", m.sha256) and m.size in (6726529, 6728029)
        assert re.fullmatch(r"https://github\.com/onnx/models/raw/[0-9a-f]{40}/\S+\.onnx", m.url)
    assert registry.PYTORCH_EXAMPLES.sha256 is None  # none is published
    assert registry.zoo_model("Rain_Princess").filename == "rain-princess-9.onnx"
    with pytest.raises(StylizeError, match="at opset 8; available: mosaic"):
        registry.zoo_model("mosaic", 8)
    with pytest.raises(StylizeError, match="unknown style 'starry-night'"):
        registry.zoo_model("starry-night")


def test_fetch_file_checks_hash_and_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights" * 100)
    digest = file_sha256(src)
    dest = tmp_path / "cache" / "w.bin"
    assert fetch_file(src.as_uri(), dest, digest, 700) == dest and dest.read_bytes() == src.read_bytes()
    dest.unlink()
    with pytest.raises(StylizeError, match="does not match"):
        fetch_file(src.as_uri(), dest, "0" * 64)
    with pytest.raises(StylizeError, match="got 700 bytes, expected 5"):
        fetch_file(src.as_uri(), dest, digest, 5)
    assert not dest.exists() and not list(dest.parent.glob("*.partial"))
    with pytest.raises(StylizeError, match="no published sha256"):
        fetch_file(src.as_uri(), dest, None)


def test_exception_no_network_names_url_and_path(tmp_path):
    url = "http://127.0.0.1:9/mosaic-9.onnx"  # discard port on loopback: refused at once
    dest = tmp_path / "downloads" / "mosaic-9.onnx"
    with pytest.raises(StylizeError) as err:
        fetch_file(url, dest, "a" * 64, timeout=5)
    assert url in str(err.value) and str(dest) in str(err.value) and "a" * 64 in str(err.value)


def test_fetch_style_zoo_end_to_end(zoo_like, tmp_path, monkeypatch):
    from stylize_video.export.zoo_import import fetch_style

    net, blob = zoo_like
    src = tmp_path / "mosaic-9.onnx"
    src.write_bytes(blob)
    entry = registry.ZooModel("mosaic", 9, "0" * 40, "x", file_sha256(src), len(blob))
    monkeypatch.setattr(registry.ZooModel, "url", property(lambda self: src.as_uri()))
    monkeypatch.setattr(registry, "ZOO", (entry,))
    _, got = fetch_style("mosaic", tmp_path / "cache")
    assert got.download == tmp_path / "cache" / "downloads" / "mosaic-9.onnx" and got.import_error <= 0.05
    reloaded, info = load_model(got.checkpoint)
    x = torch.rand(1, 3, 37, 50) * 255
    with torch.no_grad():
        assert torch.allclose(reloaded(x), net(x), atol=1e-3)
    assert info.arch == "transformer_net"


def test_fetch_style_pytorch_examples_zip(make_net, tmp_path, monkeypatch):
    from stylize_video.export.zoo_import import fetch_style

    net = make_net(4)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["in1.running_mean"] = torch.zeros(32)  # legacy key, as in the published files
    raw = io.BytesIO()
    torch.save(state, raw)
    archive = tmp_path / "saved_models.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("saved_models/udnie.pth", raw.getvalue())
    monkeypatch.setattr(registry, "PYTORCH_EXAMPLES", registry.Archive("t", archive.as_uri(), None,
                                                                        {"udnie": "udnie.pth"}))
    import stylize_video.export.zoo_import as zi

    monkeypatch.setattr(zi, "PYTORCH_EXAMPLES", registry.PYTORCH_EXAMPLES)
    with pytest.raises(StylizeError, match="--allow-unverified"):
        fetch_style("udnie", tmp_path / "c", source="pytorch-examples")
    imported, got = fetch_style("udnie", tmp_path / "c", source="pytorch-examples", allow_unverified=True)
    x = torch.rand(1, 3, 20, 24) * 255
    with torch.no_grad():
        assert np.allclose(imported(x).numpy(), net(x).numpy(), atol=1e-4)
    assert got.checkpoint.name == "udnie.pth"
