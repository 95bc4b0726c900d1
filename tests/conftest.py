"""Fixtures shared by every stage's tests: other people's architectures (spandrel), small and random-weighted,
saved the ways their authors publish them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch


def spandrel_nets(seed: int = 0) -> dict[str, torch.nn.Module]:
    """Small configurations of three published architectures (random weights, eval mode).

    compact: Real-ESRGAN SRVGGNetCompact (the realesr-animevideov3 family) x2, 16 features, 2 body convs: four
             3x3 convolutions, so its receptive-field radius is 4 input pixels.
    rrdb:    ESRGAN / Real-ESRGAN RRDBNet x2 (old-arch keys, as the ESRGAN model zoo publishes them).
    swinir:  SwinIR lightweight x2 (pixelshuffledirect), window 8, one stage of depth 2.
    """
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SwinIR's torch.meshgrid indexing note
        return {
            "compact": Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=2).eval(),
            "rrdb": ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2).eval(),
            "swinir": SwinIR(img_size=32, in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=8,
                             mlp_ratio=2.0, upscale=2, upsampler="pixelshuffledirect", resi_connection="1conv").eval(),
        }


@pytest.fixture(scope="session")
def spandrel_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The nets of ``spandrel_nets`` saved as people publish them: ``{"params": ...}`` (Real-ESRGAN compact),
    ``{"params_ema": ...}`` (SwinIR real-world), a bare state dict (ESRGAN zoo) and safetensors (Hugging Face)."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("spandrel")
    nets = spandrel_nets()
    sd = {k: v.state_dict() for k, v in nets.items()}
    files = {"compact": root / "compact_params.pth", "rrdb": root / "rrdb_bare.pth",
             "swinir": root / "swinir_params_ema.pth", "rrdb_safetensors": root / "rrdb.safetensors"}
    torch.save({"params": sd["compact"]}, files["compact"])
    torch.save(sd["rrdb"], files["rrdb"])
    torch.save({"params_ema": sd["swinir"], "params": nets["compact"].state_dict()}, files["swinir"])
    save_file({k: v.contiguous() for k, v in sd["rrdb"].items()}, str(files["rrdb_safetensors"]))
    return files


@pytest.fixture(scope="session")
def spandrel_models() -> dict[str, torch.nn.Module]:
    """``spandrel_nets()``: the very modules ``spandrel_files`` holds the weights of (same seed)."""
    return spandrel_nets()


@pytest.fixture
def fifo(tmp_path: Path):
    """A FIFO (named pipe) in ``tmp_path`` with a reader thread already waiting on it (a writer blocks until one
    opens it, as a shell's ``>(cmd)`` has). Yields ``(path, read)``: ``read()`` joins the reader and returns the
    bytes it got up to the writer's close."""
    import os
    import threading

    path = tmp_path / "out.fifo"
    os.mkfifo(path)
    got: list[bytes] = []

    def reader() -> None:
        with open(path, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()

    def read() -> bytes:
        thread.join(timeout=30)
        assert got, "nothing opened the FIFO for writing"
        return got[0]

    yield path, read
    if thread.is_alive():  # the test failed before writing: open the FIFO once so the reader ends
        with open(path, "wb"):
            pass
        thread.join(timeout=5)
