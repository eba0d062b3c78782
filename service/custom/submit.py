"""The API's side of a teach job: check the clips and the name, store the clips, queue the job.

record = submit_teach_job(upload, clips, request, jobs, shipped_names, custom)
"""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from dataclasses import dataclass

import redis
from kombu.exceptions import OperationalError

from service.custom.archive import InvalidTrainingSet, UnpackedClip
from service.custom.models import CustomClassifiers, check_name, owner_folder
from service.custom.teach import PLAN_NAME, TeachPlan, TrainingClip
from service.jobs.queue import JobQueue, QueueUnavailable
from service.jobs.state import FINISHED, JobKind, JobRecord, redis_text
from service.observability.logs import current_request_id
from service.video.decode import DecodeLimits, VideoDecodeError, check_playable
from service.video.upload import (
    CONTAINERS,
    StorageFull,
    UnsupportedVideo,
    describe_content,
    room_on_disk,
    sniff_container,
)

TEACH_TASK = "actionstyle.teach_classifier"
MIN_LABELS, MIN_CLIPS_PER_LABEL = 2, 3
_LABEL = re.compile(r"^[^\x00-\x1f/\\<>]{1,64}$")
_RESERVATION = "actionstyle:teach-name:{folder}/{name}"


class ClassifierExists(RuntimeError):
    """The name is a shipped model's, or one of the caller's classifiers (or being taught)."""


@dataclass(frozen=True)
class TeachSubmission:
    name: str
    client: str
    limits: DecodeLimits
    reservation_ttl_s: int


def check_training_set(clips: list[UnpackedClip]) -> dict[str, int]:
    """Clips per label, once the labels are valid and there are enough of each."""
    counts: dict[str, int] = {}
    for clip in clips:
        if not _LABEL.match(clip.label) or clip.label != clip.label.strip():
            raise InvalidTrainingSet(
                f"'{clip.label[:80]}' (for '{clip.shown}') is not a valid label: 1 to 64 "
                "characters, no slashes, no control characters, no leading or trailing spaces"
            )
        counts[clip.label] = counts.get(clip.label, 0) + 1
    if len(counts) < MIN_LABELS:
        raise InvalidTrainingSet(
            f"a classifier needs at least {MIN_LABELS} labels; got {len(counts)}"
            + (f" ({', '.join(sorted(counts))})" if counts else "")
        )
    few = sorted(label for label, count in counts.items() if count < MIN_CLIPS_PER_LABEL)
    if few:
        described = ", ".join(f"'{label}' has {counts[label]}" for label in few)
        raise InvalidTrainingSet(
            f"each label needs at least {MIN_CLIPS_PER_LABEL} clips: {described}"
        )
    return counts


def check_clips(clips: list[UnpackedClip], limits: DecodeLimits) -> list[UnpackedClip]:
    """Refuse a file that is not a playable video, naming it, before anything is queued; a clip
    sent without an extension comes back named for its container."""
    checked = []
    for clip in clips:
        with open(clip.path, "rb") as f:
            head = f.read(512)
        container = sniff_container(head)
        if container is None:
            what = describe_content(head) if head else "empty"
            found = f"is {what}, not a video" if what else "matches no video format we accept"
            raise UnsupportedVideo(f"the clip '{clip.shown}' {found}")
        if not clip.path.suffix:
            named = clip.path.rename(clip.path.with_suffix(CONTAINERS[container][1]))
            clip = UnpackedClip(clip.label, named, clip.shown)
        try:
            check_playable(clip.path, limits)
        except VideoDecodeError as exc:
            raise type(exc)(f"the clip '{clip.shown}' cannot be used: {exc}") from exc
        checked.append(clip)
    return checked


def _reserve(client: redis.Redis, jobs: JobQueue, key: str, job_id: str, ttl_s: int) -> bool:
    """Take the name for this job, unless a queued or running job already holds it."""
    if client.set(key, job_id, nx=True, ex=ttl_s):
        return True
    holder = client.get(key)
    record = jobs.store.get(redis_text(holder)) if holder else None
    if record is not None and record.state not in FINISHED:
        return False
    client.set(key, job_id, ex=ttl_s)  # the holder finished or expired: the name is free
    return True


def release_name(client: redis.Redis, name: str, owner: str) -> None:
    client.delete(_RESERVATION.format(folder=owner_folder(owner), name=name))


def submit_teach_job(
    clips: list[UnpackedClip],
    submission: TeachSubmission,
    jobs: JobQueue,
    shipped: list[str],
    custom: CustomClassifiers,
) -> JobRecord:
    """Check everything a person can fix, then store the clips and queue the job."""
    name, owner = check_name(submission.name), submission.client
    if name in shipped:
        raise ClassifierExists(f"'{name}' is the name of a shipped model; choose another name")
    check_training_set(clips)
    clips = check_clips(clips, submission.limits)
    if custom.exists(name, owner):
        raise ClassifierExists(
            f"you already have a classifier named '{name}'; delete it first or choose another name"
        )
    job_id = uuid.uuid4().hex
    key = _RESERVATION.format(folder=owner_folder(owner), name=name)
    try:
        if not _reserve(jobs.store.client, jobs, key, job_id, submission.reservation_ttl_s):
            raise ClassifierExists(f"a classifier named '{name}' is being taught; wait for it")
    except redis.RedisError as exc:
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc
    planned = []
    try:
        with room_on_disk("the training clips for their job"):
            for i, clip in enumerate(clips):
                stored_name = f"clip-{i:03d}{clip.path.suffix}"
                jobs.storage.put(job_id, stored_name, clip.path)
                planned.append(TrainingClip(clip.label, stored_name, clip.shown))
            plan = TeachPlan(name, owner, planned)
            jobs.storage.put_bytes(job_id, PLAN_NAME, plan.to_bytes())
    except StorageFull:
        jobs.storage.delete(job_id)
        with suppress(redis.RedisError):
            jobs.store.client.delete(key)
        raise
    try:
        record = jobs.store.create(job_id, "", owner, kind=JobKind.TEACH, classifier=name)
        jobs.celery.send_task(
            TEACH_TASK, args=[job_id], kwargs={"request_id": current_request_id()}, task_id=job_id
        )
    except (redis.RedisError, OperationalError) as exc:
        jobs.storage.delete(job_id)
        with suppress(redis.RedisError):
            jobs.store.client.delete(key)
            jobs.store.discard(job_id)
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc
    return record
