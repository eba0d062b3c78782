"""Every exported model, loaded once per process and looked up by name.

registry = load_registry(Path("exported_models"), intra_op_threads=1)
classifier = registry.classifier(None)   # the manifest's default
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from service.contract.manifest import Manifest, ManifestError, load_manifest
from service.inference.classifier import Classifier, load_classifier
from service.inference.memory import release_freed_heap
from service.inference.styles import StyleCatalog

if TYPE_CHECKING:
    from service.settings import MemoryArena


class UnknownModel(LookupError):
    """The requested model is not in the manifest."""


class ModelRegistry:
    def __init__(
        self, manifest: Manifest, classifiers: dict[str, Classifier], styles: StyleCatalog
    ) -> None:
        self.manifest = manifest
        self._classifiers = classifiers
        self.styles = styles

    @property
    def classifier_names(self) -> list[str]:
        return list(self._classifiers)

    def classifier(self, name: str | None) -> Classifier:
        """The named classifier, or the manifest's default when `name` is None."""
        wanted = self.manifest.default_classifier if name is None else name
        try:
            return self._classifiers[wanted]
        except KeyError:
            known = ", ".join(self.classifier_names)
            raise UnknownModel(f"unknown model '{wanted}'; known models: {known}") from None


def load_registry(
    models_dir: Path,
    intra_op_threads: int,
    open_set_thresholds: dict[str, float] | None = None,
    open_set_min_top1: dict[str, float] | None = None,
    arena: MemoryArena = "shared",
    openvino_classifiers: Collection[str] = (),
    concurrent: int = 1,
) -> ModelRegistry:
    """Load every classifier and verify every style file of the manifest.

    The classifiers named in `openvino_classifiers` ("all": every one) run on OpenVINO, ready
    for `concurrent` calls at once; the others on onnxruntime, which takes any number.
    Raises ModelsMissing or ManifestError. Style networks are not loaded here: the workers run them.
    """
    manifest = load_manifest(models_dir)
    thresholds, floors = open_set_thresholds or {}, open_set_min_top1 or {}
    names = [entry.name for entry in manifest.classifiers]
    unknown = sorted(set(openvino_classifiers) - set(names) - {"all"})
    if unknown:
        raise ManifestError(
            f"ACTIONSTYLE_OPENVINO_CLASSIFIERS names {', '.join(unknown)}, which the manifest "
            f"does not have; its classifiers: {', '.join(names)} (or all)"
        )
    on_openvino = set(names) if "all" in openvino_classifiers else set(openvino_classifiers)
    classifiers = {
        entry.name: load_classifier(
            models_dir,
            entry,
            intra_op_threads,
            thresholds.get(entry.name),
            floors.get(entry.name),
            arena,
            openvino=entry.name in on_openvino,
            concurrent=concurrent,
        )
        for entry in manifest.classifiers
    }
    styles = StyleCatalog(models_dir, manifest)
    styles.verify()
    release_freed_heap()
    return ModelRegistry(manifest, classifiers, styles)
