"""The manifest in `exported_models/`: its schema, reading it, and writing it entry by entry.

The manifest is the hand-over from training: which ONNX files exist, how to build their input
(see `service.video.preprocess`), their labels and their measured quality. This module is its
one owner, free of any framework: the service loads it, training writes it through the upserts
below, so an entry that breaks the schema fails at export, not when the service starts.

    manifest = load_manifest(Path("exported_models"))
    onnx_path = verified_path(Path("exported_models"), manifest.classifiers[0])
    upsert_classifier(Path("exported_models"), ClassifierEntry.model_validate(entry), True)
    upsert_encoder(Path("exported_models"), EncoderEntry.model_validate(entry))
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from service.video.preprocess import ClipSpec

MANIFEST_NAME = "manifest.json"
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


_SHA256_PATTERN = r"^[0-9a-f]{64}$"
_PART_PATTERN = re.compile(_NAME_PATTERN)


def _relative_file(value: str) -> str:
    """A path inside the models folder: relative, '/'-separated, no '..', no hidden tricks."""
    # Each '/'-separated part must be a plain name: no empty part (absolute, '//'), no '..'.
    if not all(_PART_PATTERN.match(part) and part != ".." for part in value.split("/")):
        raise ValueError(f"'{value}' must be a relative path inside the models folder")
    return value


RelativeFile = Annotated[str, AfterValidator(_relative_file)]


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
    # None: no held-out clip of that class (a smoke run, or a class too small to hold any out)
    per_class: dict[str, float | None] = Field(default_factory=dict)
    params: int | None = None
    file_size_bytes: int | None = None
    training_time_s: float | None = None
    test_clips: int | None = None
    cpu_latency_ms: float | None = None


class OpenSetSpec(BaseModel):
    """How the model tells actions it never saw: a second output compared with a threshold."""

    model_config = ConfigDict(extra="allow")

    output_name: str
    threshold: float = Field(ge=0.0, description="Above this distance the clip is not confident.")
    min_top1_probability: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Below this top-1 probability: not confident."
    )
    method: str = ""


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
    open_set: OpenSetSpec | None = None


class StyleIO(BaseModel):
    """The tensor a feed-forward style network takes and gives: the service builds only this."""

    model_config = ConfigDict(extra="ignore")

    layout: Literal["NCHW"] = "NCHW"
    color: Literal["RGB"] = "RGB"
    range: tuple[float, float] = (0.0, 1.0)
    size_multiple: int = Field(default=4, ge=1, le=256)

    @model_validator(mode="after")
    def _unit_range(self) -> StyleIO:
        if tuple(self.range) != (0.0, 1.0):
            raise ValueError(f"range {list(self.range)} is not supported; export with [0, 1]")
        return self


class StyleEntry(BaseModel):
    """One named style: a feed-forward network trained on one painter."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=_NAME_PATTERN, max_length=100)
    display_name: str
    kind: Literal["feedforward"] = "feedforward"
    file: RelativeFile = Field(description="ONNX file, relative to the models folder.")
    sha256: str = Field(pattern=_SHA256_PATTERN)
    input_name: str = "image"
    output_name: str = "stylized"
    io: StyleIO = Field(default_factory=StyleIO)
    # What training measured; passed through whole, whatever it holds.
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class ArbitraryStyleEntry(BaseModel):
    """The networks that take any painting as the style (Magenta's arbitrary stylisation)."""

    model_config = ConfigDict(extra="ignore")

    predict_file: RelativeFile
    transform_file: RelativeFile
    predict_sha256: str = Field(pattern=_SHA256_PATTERN)
    transform_sha256: str = Field(pattern=_SHA256_PATTERN)
    style_size: int = Field(default=256, gt=0)
    content_size: int = Field(default=384, gt=0)
    io: dict[str, Any] = Field(default_factory=dict)
    source: str = ""


class EncoderEntry(BaseModel):
    """A frozen per-frame feature encoder: custom classifiers (POST /classifiers) train on it.

    Takes a clip built by `input` (N, 3, T, H, W) and gives per-frame features (N, T, dim).
    """

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=_NAME_PATTERN, max_length=100)
    display_name: str
    file: RelativeFile = Field(description="ONNX file, relative to the models folder.")
    sha256: str = Field(pattern=_SHA256_PATTERN)
    input_name: str = "clip"
    output_name: str = "features"
    feature_dim: int = Field(gt=0)
    input: InputSpec
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class ManifestContent(BaseModel):
    """The manifest as training builds it, one export at a time: it may still be incomplete."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    default_classifier: str | None = None
    classifiers: list[ClassifierEntry] = Field(default_factory=list)
    styles: list[StyleEntry] = Field(default_factory=list)
    arbitrary_style: ArbitraryStyleEntry | None = None
    # Optional: manifests written before custom classifiers existed have none.
    encoders: list[EncoderEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique(self) -> ManifestContent:
        kinds = (("classifier", self.classifiers), ("style", self.styles))
        for kind, entries in (*kinds, ("encoder", self.encoders)):
            names = [entry.name for entry in entries]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names repeat: {names}")
        return self


class Manifest(ManifestContent):
    """A manifest the service can serve: at least one classifier, and the default among them."""

    default_classifier: str
    classifiers: list[ClassifierEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_resolves(self) -> Manifest:
        names = [entry.name for entry in self.classifiers]
        if self.default_classifier not in names:
            raise ValueError(f"default_classifier '{self.default_classifier}' is not in {names}")
        return self


def _summarise(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'manifest'}: {item['msg']}"
        for item in error.errors()
    )


_Content = TypeVar("_Content", bound=BaseModel)


def _read(path: Path, schema: type[_Content]) -> _Content:
    """The JSON file at `path` validated as `schema`; ManifestError says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(
            f"{path} does not match the manifest schema: {_summarise(exc)}"
        ) from exc


def load_manifest(models_dir: Path) -> Manifest:
    """Parse and validate `models_dir/manifest.json`."""
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelsMissing(
            f"no models are installed: {path} does not exist; export a model from training first"
        )
    return _read(path, Manifest)


def load_manifest_content(models_dir: Path) -> ManifestContent:
    """The manifest as far as it has been written; empty when nothing was exported yet."""
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        return ManifestContent()
    return _read(path, ManifestContent)


def selected_classifiers(models_dir: Path, names: list[str] | None) -> list[ClassifierEntry]:
    """The manifest's classifiers, or only those named."""
    entries = load_manifest_content(models_dir).classifiers
    return [e for e in entries if not names or e.name in names]


def load_manifest_json(models_dir: Path) -> dict:
    """The manifest so far as plain JSON values, validated, for reports and tools."""
    return load_manifest_content(models_dir).model_dump(mode="json")


def save_manifest(models_dir: Path, content: ManifestContent) -> None:
    """Write the manifest atomically: a reader sees the old file or the new one, never half."""
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / MANIFEST_NAME
    tmp = path.with_name(f".{MANIFEST_NAME}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(content.model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)


def upsert_classifier(
    models_dir: Path, entry: ClassifierEntry, make_default: bool = False
) -> ManifestContent:
    """Add or replace one classifier (by name); the first one exported becomes the default."""
    content = load_manifest_content(models_dir)
    others = [c for c in content.classifiers if c.name != entry.name]
    content.classifiers = sorted([*others, entry], key=lambda c: c.name)
    if make_default or content.default_classifier not in {c.name for c in content.classifiers}:
        content.default_classifier = entry.name
    save_manifest(models_dir, content)
    return content


def upsert_style(
    models_dir: Path, entry: StyleEntry, order: list[str] | None = None
) -> ManifestContent:
    """Add or replace one named style; styles named in `order` come first, in that order."""
    content = load_manifest_content(models_dir)
    others = [s for s in content.styles if s.name != entry.name]
    order = order or []

    def rank(style: StyleEntry) -> tuple[int, str]:
        return (order.index(style.name) if style.name in order else len(order), style.name)

    content.styles = sorted([*others, entry], key=rank)
    save_manifest(models_dir, content)
    return content


def upsert_encoder(models_dir: Path, entry: EncoderEntry) -> ManifestContent:
    """Add or replace one feature encoder (by name), keeping every other entry."""
    content = load_manifest_content(models_dir)
    others = [e for e in content.encoders if e.name != entry.name]
    content.encoders = sorted([*others, entry], key=lambda e: e.name)
    save_manifest(models_dir, content)
    return content


def set_arbitrary_style(models_dir: Path, entry: ArbitraryStyleEntry) -> ManifestContent:
    """Record the any-painting networks, keeping every other entry."""
    content = load_manifest_content(models_dir)
    content.arbitrary_style = entry
    save_manifest(models_dir, content)
    return content


def sha256_of(path: Path) -> str:
    """The checksum the manifest records for a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(models_dir: Path, entry: ClassifierEntry | EncoderEntry) -> Path:
    """The path of the entry's file, after checking its contents against the manifest's sha256.

    For the classifiers' onnxruntime sessions: a session keeps bytes it is handed for its whole
    life (as much memory again as the file: ~52 MiB for the five classifiers), not a file it reads.
    """
    path = _existing_file(models_dir, entry.name, entry.file)
    _check_digest(path, entry.name, sha256_of(path), entry.sha256)
    return path


def read_file_verified(models_dir: Path, owner: str, file: str, sha256: str) -> bytes:
    """The bytes of `models_dir/file`, checked against `sha256`; `owner` names it in errors."""
    path = _existing_file(models_dir, owner, file)
    data = path.read_bytes()
    _check_digest(path, owner, hashlib.sha256(data).hexdigest(), sha256)
    return data


def _existing_file(models_dir: Path, owner: str, file: str) -> Path:
    path = models_dir / file
    if not path.is_file():
        raise ManifestError(f"model '{owner}': {path} named in the manifest does not exist")
    return path


def _check_digest(path: Path, owner: str, digest: str, expected: str) -> None:
    if digest != expected:
        raise ManifestError(
            f"model '{owner}': {path} has sha256 {digest} but the manifest says "
            f"{expected}; the file is corrupt or was replaced without re-exporting the manifest"
        )
