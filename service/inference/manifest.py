"""The manifest in `exported_models/`: its schema, and reading the files it names, verified.

The manifest is the hand-over from training: which ONNX files exist, how to build their input
(see `service.video.preprocess`), their labels and their measured quality.

    manifest = load_manifest(Path("exported_models"))
    onnx_bytes = read_verified(Path("exported_models"), manifest.classifiers[0])
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.video.preprocess import ClipSpec

MANIFEST_NAME = "manifest.json"
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class ModelsMissing(RuntimeError):
    """No manifest has been exported yet: the service runs but is not ready."""


class ManifestError(RuntimeError):
    """The manifest or a file it names is wrong: the service refuses to start."""


class InputSpec(BaseModel):
    """How a clip becomes the model's input tensor; mirrors `ClipSpec`."""

    model_config = ConfigDict(extra="ignore")

    frames: int = Field(gt=0)
    resize_short: int = Field(gt=0)
    crop: int = Field(gt=0)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # The service builds only this layout and colour order; anything else must be refused.
    layout: Literal["NCTHW"] = "NCTHW"
    color: Literal["RGB"] = "RGB"
    sampling: str = ""
    interpolation: str = "area"
    extras: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _crop_fits(self) -> InputSpec:
        if self.crop > self.resize_short:
            raise ValueError(f"crop {self.crop} is larger than resize_short {self.resize_short}")
        return self

    def clip_spec(self) -> ClipSpec:
        return ClipSpec.from_manifest(self.model_dump())


class ClassifierMetrics(BaseModel):
    """What training measured on its held-out clips; new metrics pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    top1: float | None = None
    per_class: dict[str, float] = Field(default_factory=dict)
    params: int | None = None
    file_size_bytes: int | None = None
    training_time_s: float | None = None
    test_clips: int | None = None
    cpu_latency_ms: float | None = None


class ClassifierEntry(BaseModel):
    """One exported action classifier."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=_NAME_PATTERN)
    family: str
    display_name: str
    file: str = Field(pattern=_NAME_PATTERN, description="ONNX file name inside the models folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input_name: str
    output_name: str
    input: InputSpec
    labels: list[str] = Field(min_length=1)
    metrics: ClassifierMetrics = Field(default_factory=ClassifierMetrics)
    training: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1]
    default_classifier: str
    classifiers: list[ClassifierEntry] = Field(min_length=1)
    # Style models arrive with the stylize issue; until then the list is passed through as is.
    styles: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_resolve(self) -> Manifest:
        names = [entry.name for entry in self.classifiers]
        if len(set(names)) != len(names):
            raise ValueError(f"classifier names repeat: {names}")
        if self.default_classifier not in names:
            raise ValueError(f"default_classifier '{self.default_classifier}' is not in {names}")
        return self


def _summarise(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'manifest'}: {item['msg']}"
        for item in error.errors()
    )


def load_manifest(models_dir: Path) -> Manifest:
    """Parse and validate `models_dir/manifest.json`."""
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelsMissing(
            f"no models are installed: {path} does not exist; export a model from training first"
        )
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise ManifestError(
            f"{path} does not match the manifest schema: {_summarise(exc)}"
        ) from exc


def read_verified(models_dir: Path, entry: ClassifierEntry) -> bytes:
    """The bytes of the entry's file, after checking them against the manifest's sha256."""
    path = models_dir / entry.file
    if not path.is_file():
        raise ManifestError(f"model '{entry.name}': {path} named in the manifest does not exist")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ManifestError(
            f"model '{entry.name}': {path} has sha256 {digest} but the manifest says "
            f"{entry.sha256}; the file is corrupt or was replaced without re-exporting the manifest"
        )
    return data
