"""Atomic, hash-checked downloads into the cache (``$STYLIZE_CACHE`` or ``~/.cache/stylize-video``)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from stylize_video.errors import StylizeError
from stylize_video.export.metadata import file_sha256
from stylize_video.outfiles import partial_path

USER_AGENT = "stylize-video (+https://github.com/pytorch/examples/tree/main/fast_neural_style)"


def fetch_file(url: str, dest: Path, sha256: str | None, size: int | None = None, *, timeout: float = 60.0,
               allow_unverified: bool = False) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right hash is already there.

    Written to ``dest.partial`` and renamed only after the size and sha256 match. Without network the
    error names the URL and the path to place the file at by hand. ``sha256=None`` (publisher gives no
    hash) is refused unless ``allow_unverified``.
    """
    dest = Path(dest)
    present = file_sha256(dest) if dest.is_file() else None
    if present is not None and (sha256 is None or present == sha256):
        return dest
    if sha256 is None and not allow_unverified:
        raise StylizeError(f"{url} has no published sha256; pass --allow-unverified to download it anyway")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(dest)
    digest, got = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                got += len(block)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        hint = f" (sha256 {sha256})" if sha256 else ""
        stale = f"; the file there now has sha256 {present}" if present else ""
        raise StylizeError(f"could not download {url} ({reason}); download it by hand and place it at {dest}{hint}, "
                           f"then run the command again{stale}") from None
    if size is not None and got != size:
        tmp.unlink(missing_ok=True)
        raise StylizeError(f"{url}: got {got} bytes, expected {size}; the download was cut short or the file changed")
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise StylizeError(f"{url}: sha256 {digest.hexdigest()} does not match the registry's {sha256}")
    os.replace(tmp, dest)
    return dest
