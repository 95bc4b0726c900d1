"""Packaging: one import namespace. The sdist and the wheel built from it hold ``stylize_video.*`` only.

``python -m build`` builds the sdist, then the wheel from that sdist (what ``pip install`` of an sdist does),
so both routes are covered. The wheel is then unpacked into a bare folder and imported with ``python -S``
(no site-packages, so the editable install of the checkout cannot answer instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("train", "export", "pipeline", "benchmarks")


def _package_dirs() -> list[str]:
    """Every folder of the checkout that is a package, as its installed dotted name."""
    found = ["stylize_video"]
    for stage in STAGES:
        for init in sorted((ROOT / stage).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT)
            found.append("stylize_video." + ".".join(rel.parts))
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"stylize_video": "."}
    assert sorted(config["packages"]) == sorted(_package_dirs())


def test_console_scripts_point_into_the_namespace() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"stylize-train", "stylize-export", "stylize-video", "stylize-batch", "stylize-bench"}
    assert all(target.startswith("stylize_video.") and target.endswith(".cli:main") for target in scripts.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_wheel_holds_only_the_namespace(built: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(built[1]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"stylize_video", "stylize_video-0.1.0.dist-info"}, tops
    # Every tracked module of every stage is there, under the namespace, and nothing from tests/.
    expected = {f"stylize_video/{p.relative_to(ROOT).as_posix()}"
                for stage in STAGES for p in (ROOT / stage).rglob("*.py") if "__pycache__" not in p.parts}
    expected |= {"stylize_video/__init__.py", "stylize_video/errors.py", "stylize_video/cliargs.py",
                 "stylize_video/outfiles.py", "stylize_video/sizerules.py", "stylize_video/modelfiles.py", "stylize_video/benchmarks/schema.json",
                 "stylize_video-0.1.0.dist-info/licenses/LICENSE"}
    assert expected <= set(names), sorted(expected - set(names))
    # The sdist's extras (tests, READMEs: MANIFEST.in) are not package data.
    assert not any("/tests/" in n or n.endswith(".md") for n in names)
    metadata = zipfile.ZipFile(built[1]).read("stylize_video-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in metadata and "License-File: LICENSE" in metadata
    entry_points = zipfile.ZipFile(built[1]).read("stylize_video-0.1.0.dist-info/entry_points.txt").decode()
    assert "stylize-video = stylize_video.pipeline.cli:main" in entry_points


def test_sdist_builds_the_same_layout(built: tuple[Path, Path]) -> None:
    with tarfile.open(built[0]) as sdist:
        names = sdist.getnames()
    assert "stylize_video-0.1.0/pyproject.toml" in names
    assert "stylize_video-0.1.0/pipeline/cli.py" in names  # the repository layout, mapped at build time
    # What a user of the source needs to check it: the licence, every test, every stage's README.
    tests = {f"stylize_video-0.1.0/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / "tests").rglob("*.py")
             if "__pycache__" not in p.parts}
    readmes = {f"stylize_video-0.1.0/{p.relative_to(ROOT).as_posix()}" for stage in STAGES
               for p in (ROOT / stage).rglob("README.md") if "results" not in p.parts}  # not a results folder's
    wanted = {"stylize_video-0.1.0/LICENSE", "stylize_video-0.1.0/README.md",
              "stylize_video-0.1.0/pipeline/live/README.md"} | tests | readmes
    assert wanted <= set(names), sorted(wanted - set(names))
    assert not any("__pycache__" in n for n in names)


def test_installed_wheel_imports_without_top_level_stage_modules(built: tuple[Path, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(built[1]).extractall(site)  # what pip install does for a pure-Python wheel, minus scripts
    assert not any((site / stage).exists() for stage in STAGES)
    code = ("import sys, stylize_video, stylize_video.pipeline, stylize_video.train, stylize_video.export, "
            "stylize_video.benchmarks; print(stylize_video.pipeline.__file__); print('torch' in sys.modules); "
            "print('Stylizer' in dir(stylize_video))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    where, torch_loaded, listed = proc.stdout.split()
    assert Path(where).is_relative_to(site)
    assert torch_loaded == "False"  # the namespace and the stage packages import nothing heavy
    assert listed == "True"  # the lazily loaded Stylizer is in dir() (PEP 562 __dir__)
