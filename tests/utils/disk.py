"""A disk that really fills up, for the tests of what the service does when it does."""

from __future__ import annotations

import os
from pathlib import Path


def fill(folder: Path) -> None:
    """Write zeros into `folder` until its filesystem has no room left."""
    with (folder / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(bytes(64 * 1024))
                filler.flush()
                os.fsync(filler.fileno())
        except OSError:
            pass
