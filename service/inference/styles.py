"""The style models of the manifest: checked when the service starts, loaded once per worker.

The API only checks the files (they exist, their sha256 matches) and looks styles up by name; a
worker process loads a style's network the first time a job needs it and keeps it for the jobs
that follow.

    styles = StyleCatalog(models_dir, manifest)          # API: names, validation
    engine = StyleEngines(models_dir, manifest, threads=1, runtime="openvino", concurrent=2).named(
        "vangogh"
    )                                                    # worker: two frames at once
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from service.contract.manifest import (
    ArbitraryStyleEntry,
    Manifest,
    StyleEntry,
    read_file_verified,
)
from service.inference.arbitrary import ArbitraryStyle
from service.inference.memory import release_freed_heap
from service.inference.networks import StyleRuntime
from service.inference.stylize import FeedForwardStyle, FramesFn
from service.inference.swatch import style_thumbnail
from service.settings import MemoryArena

ARBITRARY = "arbitrary"


class UnknownStyle(LookupError):
    """The requested style is not installed."""


class NoThumbnail(LookupError):
    """There is no such style to draw a thumbnail of."""


class StyleCatalog:
    """Which styles exist, with their files verified; loads no network."""

    def __init__(self, models_dir: Path, manifest: Manifest) -> None:
        self.models_dir = models_dir
        self.entries = {entry.name: entry for entry in manifest.styles}
        self.arbitrary = manifest.arbitrary_style

    def verify(self) -> None:
        """Raise ManifestError when a style file is missing or does not match its sha256."""
        for entry in self.entries.values():
            read_file_verified(self.models_dir, entry.name, entry.file, entry.sha256)
        if self.arbitrary is not None:
            for file, digest in _arbitrary_files(self.arbitrary):
                read_file_verified(self.models_dir, ARBITRARY, file, digest)

    def style(self, name: str) -> StyleEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.entries) or "none are installed"
            raise UnknownStyle(f"unknown style '{name}'; known styles: {known}") from None

    def require_arbitrary(self) -> ArbitraryStyleEntry:
        if self.arbitrary is None:
            raise UnknownStyle(
                "styling with your own painting is not available: no arbitrary-style model "
                "is installed; pick a named style instead"
            )
        return self.arbitrary


def _arbitrary_files(entry: ArbitraryStyleEntry) -> list[tuple[str, str]]:
    return [
        (entry.predict_file, entry.predict_sha256),
        (entry.transform_file, entry.transform_sha256),
    ]


class StyleEngines:
    """One network per style per process, loaded on first use: the named styles on `runtime`,
    `concurrent` frames painted at once, each on `threads` threads (any painting: onnxruntime).
    `arena`: where their onnxruntime sessions take working memory from (the API's previews
    share its classifiers' arena: a style's own would keep ~50 MiB for good)."""

    def __init__(
        self,
        models_dir: Path,
        manifest: Manifest,
        threads: int,
        runtime: StyleRuntime = "onnxruntime",
        concurrent: int = 1,
        arena: MemoryArena = "per_session",
    ) -> None:
        self.catalog = StyleCatalog(models_dir, manifest)
        self.threads, self.runtime, self.concurrent = threads, runtime, concurrent
        self.arena = arena
        self._named: dict[str, FeedForwardStyle] = {}
        # One load per style even when two threads ask first (a worker's warm-up and its first
        # job; the API's previews): OpenVINO's first load must not run twice at once.
        self._loading = threading.Lock()
        self._arbitrary: ArbitraryStyle | None = None
        self._thumbnails: dict[str, bytes] = {}

    def named(self, name: str) -> FramesFn:
        with self._loading:
            if name not in self._named:
                self._named[name] = self._feedforward(name, self.arena)
            return self._named[name]

    def thumbnail(self, name: str) -> bytes:
        """JPEG of the style painting a landscape drawn in code (made once per process).

        The API draws thumbnails for every page that opens, so it does not keep a network per
        style for them: a one-off network (without onnxruntime's memory arena) paints it.
        """
        if name not in self._thumbnails:
            try:
                style = self._named.get(name) or self._feedforward(name, "off")
            except UnknownStyle as error:
                raise NoThumbnail(str(error)) from None
            self._thumbnails[name] = style_thumbnail(style)
            release_freed_heap()  # what the one-off session used: ~45 MiB glibc would keep
        return self._thumbnails[name]

    def _feedforward(self, name: str, arena: MemoryArena) -> FeedForwardStyle:
        entry = self.catalog.style(name)
        # The session is built from the very bytes whose sha256 was checked.
        model = read_file_verified(self.catalog.models_dir, entry.name, entry.file, entry.sha256)
        return FeedForwardStyle(
            model,
            self.threads,
            size_multiple=entry.io.size_multiple,
            input_name=entry.input_name,
            output_name=entry.output_name,
            arena=arena,
            runtime=self.runtime,
            concurrent=self.concurrent,
        )

    def painting(self, painting_rgb: np.ndarray) -> FramesFn:
        """A style engine for any painting (the arbitrary-style networks)."""
        if self._arbitrary is None:
            entry = self.catalog.require_arbitrary()
            predict, transform = (
                read_file_verified(self.catalog.models_dir, ARBITRARY, file, digest)
                for file, digest in _arbitrary_files(entry)
            )
            self._arbitrary = ArbitraryStyle(
                predict, transform, self.threads, entry.style_size, entry.content_size, self.arena
            )
        return self._arbitrary.with_style(self._arbitrary.style_vector(painting_rgb))
