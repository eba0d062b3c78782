"""Typed answers of the service: one dataclass per schema of openapi.yaml that the client reads.

    result = ClassifyResult.from_json(response.json())   # nested objects become dataclasses too

Each class names its schema in `SCHEMA`; a test holds the fields to openapi.yaml. Unknown fields
the server may add later are ignored, so an older client keeps working against a newer server.
Manifest internals (a classifier's input spec, metrics, training notes) stay plain dicts.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar, Union, get_args, get_origin, get_type_hints


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


T = TypeVar("T")


def _convert(kind: Any, value: Any) -> Any:
    """`value` (decoded JSON) as `kind`: dataclasses, lists of them, optionals, enums, datetimes."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        return None if value is None else _convert(options[0], value)
    if origin is list:
        (item,) = get_args(kind)
        return [_convert(item, element) for element in value]
    if dataclasses.is_dataclass(kind):
        return _build(kind, value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is float and isinstance(value, int):
        return float(value)
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return kind(value)
    return value


def _build(cls: type[T], data: dict[str, Any]) -> T:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _convert(hints[k], v) for k, v in data.items() if k in known})


class _FromJson:
    SCHEMA: ClassVar[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return _build(cls, data)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 text), e.g. for `--json` output."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(dataclasses.asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Prediction(_FromJson):
    SCHEMA: ClassVar[str] = "Prediction"
    label: str
    score: float


@dataclass(frozen=True)
class VideoSummary(_FromJson):
    SCHEMA: ClassVar[str] = "VideoSummary"
    duration_s: float
    fps: float
    frames: int
    width: int
    height: int


@dataclass(frozen=True)
class Timings(_FromJson):
    SCHEMA: ClassVar[str] = "Timings"
    decode: float
    inference: float
    total: float


@dataclass(frozen=True)
class Segment(_FromJson):
    SCHEMA: ClassVar[str] = "Segment"
    start_s: float
    end_s: float
    predictions: list[Prediction]
    confident: bool
    top_label: str
    ood_distance: float | None = None


@dataclass(frozen=True)
class ClassifyResult(_FromJson):
    SCHEMA: ClassVar[str] = "ClassifyResponse"
    model: str
    predictions: list[Prediction]
    confident: bool
    top_label: str
    video: VideoSummary
    timings_ms: Timings
    ood_distance: float | None = None
    segments: list[Segment] | None = None


@dataclass(frozen=True)
class JobCreated(_FromJson):
    SCHEMA: ClassVar[str] = "JobCreated"
    job_id: str
    status_url: str
    result_url: str


@dataclass(frozen=True)
class TeachJobCreated(_FromJson):
    SCHEMA: ClassVar[str] = "TeachJobCreated"
    job_id: str
    status_url: str
    classifier: str
    classifier_url: str


@dataclass(frozen=True)
class JobStatus(_FromJson):
    """A job's state; for a teach job, `frames_*` count clips looked at (+1 for the training)."""

    SCHEMA: ClassVar[str] = "JobStatus"
    job_id: str
    state: JobState
    style: str  # '' for a teach job
    progress: float
    frames_done: int
    frames_total: int
    eta_s: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    strength: float = 1.0  # how strongly the style applies; servers before it sent none
    # 'stylize' or 'teach'; plain text, not an enum, so a kind added later does not break us.
    kind: str = "stylize"
    classifier: str | None = None  # a teach job's classifier name
    queue_position: int | None = None  # while queued: jobs ahead of it; servers before it: None
    workers_online: int | None = None  # while queued: workers running (0: none is)
    result_name: str | None = None  # what the result downloads as (stylize jobs)


@dataclass(frozen=True)
class ClassifierEntry(_FromJson):
    SCHEMA: ClassVar[str] = "ClassifierEntry"
    name: str
    family: str
    display_name: str
    file: str
    sha256: str
    input_name: str
    output_name: str
    input: dict[str, Any]
    labels: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    open_set: dict[str, Any] | None = None

    # Typed views of what a taught (custom) classifier's metrics hold; None or {} otherwise.
    @property
    def cross_validated_top1(self) -> float | None:
        """Accuracy on clips held out in turn while teaching (custom classifiers only)."""
        value = self.metrics.get("cross_validated_top1")
        return None if value is None else float(value)

    @property
    def cv_folds(self) -> int | None:
        value = self.metrics.get("cv_folds")
        return None if value is None else int(value)

    @property
    def clips_per_label(self) -> dict[str, int]:
        return {label: int(n) for label, n in self.metrics.get("clips_per_label", {}).items()}

    @property
    def per_label_top1(self) -> dict[str, float | None]:
        """Each label's accuracy (cross-validated for a custom classifier)."""
        return dict(self.metrics.get("per_class", {}))


@dataclass(frozen=True)
class StyleNetwork(_FromJson):
    SCHEMA: ClassVar[str] = "StyleNetwork"
    url: str
    sha256: str
    input_name: str
    output_name: str
    size_multiple: int


@dataclass(frozen=True)
class StyleSummary(_FromJson):
    SCHEMA: ClassVar[str] = "StyleSummary"
    name: str
    display_name: str
    kind: str
    thumbnail_url: str | None
    metrics: dict[str, Any]
    network: StyleNetwork


@dataclass(frozen=True)
class ModelsInfo(_FromJson):
    SCHEMA: ClassVar[str] = "ModelsResponse"
    default_classifier: str
    classifiers: list[ClassifierEntry]
    styles: list[StyleSummary]
    custom_style: bool


# Every answer type, for the contract test against openapi.yaml.
RESULT_TYPES: tuple[type[_FromJson], ...] = (
    Prediction,
    VideoSummary,
    Timings,
    Segment,
    ClassifyResult,
    JobCreated,
    TeachJobCreated,
    JobStatus,
    ClassifierEntry,
    StyleNetwork,
    StyleSummary,
    ModelsInfo,
)
