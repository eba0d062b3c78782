"""One teach job from start to finish, as a plain function the Celery task calls.

Claims the job, extracts every clip's frame features with the encoder (progress: clips done),
cross-validates and trains the head, sets the open-set thresholds, and keeps the classifier in
the job storage. Stops between clips once the job is cancelled, leaving nothing behind.

    outcome = run_teach_job(request, attempt, context)   # JobState, or None when skipped
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from service.custom.features import Encoder, clip_features
from service.custom.head import cross_validate, fit_head, open_set_thresholds
from service.custom.models import CustomModel, storage_key
from service.jobs.state import JobState, JobStore
from service.jobs.storage import JobStorage
from service.video.decode import DecodeLimits, VideoDecodeError

logger = logging.getLogger(__name__)

PLAN_NAME = "teach.json"
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class TrainingClip:
    label: str
    file: str  # its name in the job's storage
    shown: str  # how the person who sent it named it (for messages)


@dataclass(frozen=True)
class TeachPlan:
    """What the API stored beside the clips: the name, the owner and the clips by label."""

    name: str
    client: str
    clips: list[TrainingClip]

    def to_bytes(self) -> bytes:
        clips = [vars(clip) for clip in self.clips]
        return json.dumps({"name": self.name, "client": self.client, "clips": clips}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TeachPlan:
        raw = json.loads(data)
        return cls(raw["name"], raw["client"], [TrainingClip(**clip) for clip in raw["clips"]])


@dataclass
class TeachContext:
    store: JobStore
    storage: JobStorage
    encoder: Callable[[], Encoder]
    limits: DecodeLimits
    worker: str = ""
    release_name: Callable[[str, str], None] = field(default=lambda name, client: None)
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)


class TeachCancelled(Exception):
    """The job was cancelled (or handed to another attempt) between two clips."""


def teach(
    features: list[np.ndarray], labels: list[str], name: str, client: str, encoder: Encoder
) -> CustomModel:
    """Cross-validate, train on every clip and describe the classifier (plain numpy)."""
    names = sorted(set(labels))
    targets = np.array([names.index(label) for label in labels])
    started = time.perf_counter()
    evaluation = cross_validate(features, targets, len(names))
    head = fit_head(features, targets, len(names))
    threshold, min_top1 = open_set_thresholds(features, targets, evaluation)
    counts = {label: labels.count(label) for label in names}
    description = {
        "name": name,
        "labels": names,
        "clips": len(labels),
        "input": encoder.entry.input.model_dump(mode="json"),
        "open_set": {"threshold": threshold, "min_top1_probability": min_top1},
        "metrics": {
            "top1": evaluation.accuracy,
            "cross_validated_top1": evaluation.accuracy,
            "per_class": dict(zip(names, evaluation.per_label, strict=True)),
            "clips_per_label": counts,
            "cv_folds": evaluation.folds,
            "head_training_time_s": round(time.perf_counter() - started, 3),
        },
        "training": {
            "custom": True,
            "encoder": encoder.entry.name,
            "head": "softmax regression on mean frame features (numpy)",
            "cross_validation": f"{evaluation.folds} folds, each clip (and its mirrored and "
            "sub-sampled views) held out whole",
            "clips_per_label": counts,
            "created_by": client or "anonymous",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    return CustomModel(head, description)


def _extract(
    plan: TeachPlan, local: dict, context: TeachContext, progress: Callable[[int], None]
) -> list[np.ndarray]:
    encoder = context.encoder()
    features = []
    for done, clip in enumerate(plan.clips):
        try:
            features.append(clip_features(encoder, local[clip.file], context.limits))
        except VideoDecodeError as exc:
            raise type(exc)(f"the clip '{clip.shown}' cannot be used: {exc}") from exc
        progress(done + 1)
    return features


def run_teach_job(job_id: str, attempt: str, context: TeachContext) -> JobState | None:
    """Run the job; returns its final state, or None when this attempt does not own it."""
    store, storage = context.store, context.storage
    if not store.start(job_id, attempt, context.worker):
        record = store.get(job_id)
        if record is not None and record.state is JobState.CANCELLED:
            _forget(job_id, context)
        return None
    plan = _read_plan(job_id, context)
    try:
        if store.count_attempt(job_id) > MAX_ATTEMPTS:
            message = f"the job was started {MAX_ATTEMPTS} times and its worker stopped each time"
            return _finish(job_id, attempt, context, plan, JobState.FAILED, message)
        total = len(plan.clips) + 1  # every clip, then the training

        def progress(done: int) -> None:
            if not store.progress(job_id, attempt, done, total, None):
                raise TeachCancelled
            context.on_progress(done, total)

        started = time.monotonic()
        with storage.local_copies(job_id, [clip.file for clip in plan.clips]) as local:
            features = _extract(plan, local, context, progress)
        model = teach(
            features, [c.label for c in plan.clips], plan.name, plan.client, context.encoder()
        )
        model.description["metrics"]["training_time_s"] = round(time.monotonic() - started, 2)
        key = storage_key(plan.name, plan.client)
        if storage.get_blob(key) is not None:
            message = f"a classifier named '{plan.name}' was made meanwhile; choose another name"
            return _finish(job_id, attempt, context, plan, JobState.FAILED, message)
        if not store.owned_by(job_id, attempt):
            raise TeachCancelled
        storage.put_blob(key, model.to_bytes())
        storage.delete(job_id)  # the clips are done with: tidy before saying so
        if not store.finish(job_id, attempt, JobState.SUCCEEDED):
            storage.delete_blob(key)  # cancelled in the last instant: keep nothing
            raise TeachCancelled
        logger.info("job %s taught '%s' from %d clips", job_id, plan.name, len(plan.clips))
        context.release_name(plan.name, plan.client)
        return JobState.SUCCEEDED
    except TeachCancelled:
        record = store.get(job_id)
        if record is not None and record.state is JobState.CANCELLED:
            _forget(job_id, context, plan)
            return JobState.CANCELLED
        return None
    except VideoDecodeError as exc:
        return _finish(job_id, attempt, context, plan, JobState.FAILED, str(exc))


def fail_teach_job(job_id: str, attempt: str, context: TeachContext, message: str) -> None:
    """Fail the attempt's job for a reason found outside it (its time limit, a crash): its
    clips are dropped and its name freed, as when it fails inside."""
    try:
        plan: TeachPlan | None = _read_plan(job_id, context)
    except Exception:  # whatever the storage raises, the job must still be marked failed
        logger.warning("job %s: its plan could not be read; its name is not freed", job_id)
        plan = None
    _finish(job_id, attempt, context, plan, JobState.FAILED, message)


def _read_plan(job_id: str, context: TeachContext) -> TeachPlan:
    with context.storage.local_copies(job_id, [PLAN_NAME]) as local:
        return TeachPlan.from_bytes(local[PLAN_NAME].read_bytes())


def _finish(
    job_id: str,
    attempt: str,
    context: TeachContext,
    plan: TeachPlan | None,
    state: JobState,
    message: str | None = None,
) -> JobState | None:
    if not context.store.finish(job_id, attempt, state, message):
        return None
    _forget(job_id, context, plan)
    logger.info("job %s %s: %s", job_id, state.value, message)
    return state


def _forget(job_id: str, context: TeachContext, plan: TeachPlan | None = None) -> None:
    """The clips are no longer needed, and the name is free again (or taken for good)."""
    context.storage.delete(job_id)
    if plan is not None:
        context.release_name(plan.name, plan.client)
