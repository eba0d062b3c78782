"""What the job routes return."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from service.jobs.state import JobKind, JobRecord, JobState


class JobCreated(BaseModel):
    job_id: str = Field(description="32 hexadecimal digits.")
    status_url: str = Field(description="GET it for the state and progress.")
    result_url: str = Field(description="GET it for the MP4 once the state is 'succeeded'.")


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    kind: JobKind = Field(
        default=JobKind.STYLIZE,
        description="'stylize' (its result: GET /jobs/{id}/result, an MP4) or 'teach' (its "
        "result: GET /classifiers/{classifier}).",
    )
    classifier: str | None = Field(
        default=None, description="A teach job's classifier name; null for a stylize job."
    )
    style: str = Field(
        description="The named style, or 'painting' for an uploaded painting; '' for a teach job."
    )
    strength: float = Field(
        default=1.0, gt=0.0, le=1.0, description="How strongly the style applies; 1: fully."
    )
    progress: float = Field(ge=0.0, le=1.0, description="Frames done / frames total; 1 when done.")
    frames_done: int = Field(description="Frames stylised; for a teach job, clips looked at.")
    frames_total: int = Field(
        description="0 until the worker has opened the video; for a teach job, clips + 1 "
        "(the training)."
    )
    eta_s: float | None = Field(description="Seconds left, estimated while running; else null.")
    queue_position: int | None = Field(
        default=None,
        description="While queued: how many jobs wait ahead of it (0: it starts next); else null.",
    )
    workers_online: int | None = Field(
        default=None,
        description="While queued: how many workers are running; 0 means none is, and the job "
        "waits until one starts. Else null.",
    )
    error: str | None = Field(description="Why the job failed, for a person to read.")
    result_name: str | None = Field(
        default=None,
        description="A stylize job's result downloads as this file name: the uploaded file's "
        "name, then the style (`clip.vangogh.mp4`); null for a teach job.",
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, record: JobRecord) -> JobStatus:
        return cls(
            job_id=record.job_id,
            state=record.state,
            kind=record.kind,
            classifier=record.classifier if record.kind is JobKind.TEACH else None,
            style=record.style,
            strength=record.strength,
            progress=round(record.progress, 4),
            frames_done=record.frames_done,
            frames_total=record.frames_total,
            eta_s=None if record.eta_s is None else round(record.eta_s, 1),
            queue_position=record.queue_position,
            workers_online=record.workers_online,
            result_name=record.result_name,
            error=record.error,
            created_at=datetime.fromtimestamp(record.created_at, UTC),
            started_at=_time(record.started_at),
            finished_at=_time(record.finished_at),
        )


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
