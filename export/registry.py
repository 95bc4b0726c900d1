"""Pretrained styles we know how to fetch: URL, sha256 and size of each file.

ONNX model zoo (onnx/models, BSD-3-Clause) ``fast_neural_style``: pytorch/examples' TransformerNet exported
by torch 1.0 at a fixed 1x3x224x224, input ``input1``, output ``output1``. The sha256 and sizes are the
``oid``/``size`` lines of the Git LFS pointer files in onnx/models; each URL is pinned to the commit whose
pointer was read, so the hash cannot drift when the repository moves files
(``vision/style_transfer/fast_neural_style/models/`` -> ``.../model/`` -> ``validated/vision/...``).
Mosaic at opset 8 is left out: no LFS pointer for it was found in onnx/models.

Licences: the zoo's ``fast_neural_style/README.md`` gives BSD-3-Clause for these models (pytorch/examples'
weights, converted); pytorch/examples itself is BSD-3-Clause (its ``LICENSE``).

pytorch/examples publishes its ``saved_models.zip`` (candy/mosaic/rain_princess/udnie ``.pth``) on Dropbox
with NO checksum anywhere (``download_saved_models.py`` only unzips), so fetching it needs
``--allow-unverified``; the hash we computed is printed so it can be pinned locally.
"""

from __future__ import annotations

from dataclasses import dataclass

from stylize_video.errors import StylizeError

_RAW = "https://github.com/onnx/models/raw"
ZOO_LICENCE = "BSD-3-Clause"  # onnx/models vision/style_transfer/fast_neural_style/README.md, "License"
TASK = "style"  # every registry model is a style-transfer TransformerNet (scale 1); no SR model is published


@dataclass(frozen=True)
class ZooModel:
    """One ONNX zoo file. ``path`` is relative to the onnx/models repository at ``commit``."""

    style: str
    opset: int
    commit: str
    path: str
    sha256: str
    size: int

    @property
    def url(self) -> str:
        return f"{_RAW}/{self.commit}/{self.path}"

    @property
    def filename(self) -> str:
        return f"{self.style}-{self.opset}.onnx"


@dataclass(frozen=True)
class Archive:
    """A zip of state_dicts; ``sha256`` is None where the publisher gives none."""

    name: str
    url: str
    sha256: str | None
    members: dict[str, str]  # style name -> file name in the zip (matched at any folder depth)
    licence: str = "unknown"  # SPDX identifier
    filename: str = "saved_models.zip"  # name in <cache>/downloads (pytorch/examples' own name for it)


_FNS = "vision/style_transfer/fast_neural_style"
ZOO: tuple[ZooModel, ...] = (
    ZooModel("mosaic", 9, "8450a58309179f6cf1d5556c0f3ae730df11bb9b", f"{_FNS}/models/mosaic.onnx",
             "fa646dedade881243f8d5a2ceb7de2b93675b21fc24f7482894ac4851a9a0a47", 6728029),
    ZooModel("candy", 9, "86231b379da0caf504a896e6b34c32880e627be9", f"{_FNS}/models/candy.onnx",
             "9d11a3529d1e547da6ae07201d93484dbab2ec0a3614535752c8f40f0fe2968a", 6728029),
    ZooModel("rain-princess", 9, "13fcb614fdedcc09864c0691c080ccf82ca3b85b", f"{_FNS}/model/rain-princess-9.onnx",
             "4162912e6f75fedef6f810ae989b9e10d3d5d43308dab34b027c850cf255e152", 6728029),
    ZooModel("udnie", 9, "2a67a85e670e61bf9819e9df6dae3771974552ff", f"validated/{_FNS}/model/udnie-9.onnx",
             "8656b6ce7dec8f22ee13c2d557d6b67bd6f550dde88d0f2e7c9972aeb765cc0d", 6728029),
    ZooModel("pointilism", 9, "13fcb614fdedcc09864c0691c080ccf82ca3b85b", f"{_FNS}/model/pointilism-9.onnx",
             "5ee2b8d4d6bc60a777f54e0fe96a1b717360a004b79d56c67390d4a975b14d98", 6728029),
    ZooModel("candy", 8, "c391585e40b316f7c71a264ce05d322a2988d786", f"{_FNS}/models/opset8/candy.onnx",
             "e3c6f442e12014c5fec12b4307c14ca303df185cda19f67522afeef40c4d22b8", 6726529),
    ZooModel("rain-princess", 8, "13fcb614fdedcc09864c0691c080ccf82ca3b85b", f"{_FNS}/model/rain-princess-8.onnx",
             "bf13b623576021a77dab6aa54c366d0900e8f55909be27cf4a40248d6ff6e097", 6726529),
    ZooModel("udnie", 8, "c391585e40b316f7c71a264ce05d322a2988d786", f"{_FNS}/models/opset8/udnie.onnx",
             "31f8c5457a0d850b55564b018f6e494e49b3392c50eee6662799a47491b4a933", 6726529),
    ZooModel("pointilism", 8, "4c46cd00fbdb7cd30b6c1c17ab54f2e1f4f7b177", f"validated/{_FNS}/model/pointilism-8.onnx",
             "09fb31931c1826daf42552e451a908d068486a3ca946324a3ece758d51f46cad", 6726529),
)

PYTORCH_EXAMPLES = Archive(
    name="pytorch-examples-saved-models",
    url="https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1",
    sha256=None,
    members={"candy": "candy.pth", "mosaic": "mosaic.pth", "rain-princess": "rain_princess.pth", "udnie": "udnie.pth"},
    licence="BSD-3-Clause",  # pytorch/examples LICENSE
)

SOURCES = ("zoo", "pytorch-examples")


@dataclass(frozen=True)
class Entry:
    """One way to fetch one style: what ``stylize-export list`` shows. ``opset`` is None outside the zoo."""

    style: str
    task: str
    source: str  # a ``fetch --source`` value
    opset: int | None
    url: str
    sha256: str | None  # None: the publisher gives no hash (fetch needs --allow-unverified)
    licence: str
    filename: str  # the download's name in <cache>/downloads


def entries() -> list[Entry]:
    """Every registry entry, by style, then zoo (newest opset first) before pytorch/examples."""
    found = [Entry(m.style, TASK, "zoo", m.opset, m.url, m.sha256, ZOO_LICENCE, m.filename) for m in ZOO]
    found += [Entry(style, TASK, "pytorch-examples", None, PYTORCH_EXAMPLES.url, PYTORCH_EXAMPLES.sha256,
                    PYTORCH_EXAMPLES.licence, PYTORCH_EXAMPLES.filename) for style in PYTORCH_EXAMPLES.members]
    return sorted(found, key=lambda e: (e.style, SOURCES.index(e.source), -(e.opset or 0)))


def styles() -> list[str]:
    """Every style name either source offers."""
    return sorted({m.style for m in ZOO} | set(PYTORCH_EXAMPLES.members))


def _canonical(style: str) -> str:
    return style.strip().lower().replace("_", "-")


def zoo_model(style: str, opset: int = 9) -> ZooModel:
    """Registry entry for ``style`` at ``opset``; unknown names list what exists."""
    style = _canonical(style)
    for m in ZOO:
        if m.style == style and m.opset == opset:
            return m
    have = sorted(f"{m.style} (opset {m.opset})" for m in ZOO if m.style == style)
    if have:
        raise StylizeError(f"no ONNX zoo file for {style} at opset {opset}; available: {', '.join(have)}")
    raise StylizeError(f"unknown style {style!r}; known: {', '.join(styles())}")


def archive_member(style: str) -> str:
    style = _canonical(style)
    try:
        return PYTORCH_EXAMPLES.members[style]
    except KeyError:
        raise StylizeError(f"pytorch/examples has no {style!r} model; it has: "
                           f"{', '.join(sorted(PYTORCH_EXAMPLES.members))}") from None
