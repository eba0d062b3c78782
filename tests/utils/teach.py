"""Training sets for custom classifiers, good and hostile, built in memory.

Real clips by label, as multipart files or as a ZIP, and hostile archives (links, '..', absolute
paths, bombs).

    files, data = training_form(TRAINING_SET, name="yoyo-or-punch")
    client.post("/classifiers", files=files, data=data)
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

from tests.utils.data import UCF101

# Two labels x three clips of real UCF101 actions (each clip from a different group or clip).
TRAINING_SET: dict[str, list[Path]] = {
    "yoyo": [UCF101 / "YoYo" / f"v_YoYo_g0{g}_c01.avi" for g in (2, 3, 4)],
    "punch": [UCF101 / "Punch" / f"v_Punch_g0{g}_c01.avi" for g in (2, 3, 4)],
}
YOYO_TEST_CLIP = UCF101 / "YoYo" / "v_YoYo_g05_c02.avi"


def training_form(
    clips: dict[str, list[Path]], name: str
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """(files, data) for httpx/TestClient: every clip in `files`, its label in `labels`."""
    files, labels = [], []
    for label, paths in clips.items():
        for path in paths:
            files.append(("files", (path.name, path.read_bytes(), "video/x-msvideo")))
            labels.append(label)
    return files, {"name": name, "labels": labels}


def zip_bytes(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A ZIP holding `entries` (name -> content) and `symlinks` (name -> link target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def training_zip(clips: dict[str, list[Path]], root: str = "") -> bytes:
    """A ZIP of `<label>/<clip>` folders (under `root`/ when given)."""
    prefix = f"{root}/" if root else ""
    return zip_bytes(
        {
            f"{prefix}{label}/{path.name}": path.read_bytes()
            for label, paths in clips.items()
            for path in paths
        }
    )


def zip_bomb(inflated_bytes: int) -> bytes:
    """A valid training layout whose one clip inflates from a few KiB to `inflated_bytes`."""
    return zip_bytes({"a/bomb.avi": bytes(inflated_bytes), "b/x.avi": b"RIFF"})
