"""The state of each job (stylize or teach), in Redis, so the API knows it whatever Celery is doing.

One hash per job (`actionstyle:job:<id>`), expiring `ttl_s` after its last change. Every change is
one Lua script that checks the state it moves from, so a cancel and a worker never race: a
cancelled job cannot be started or finished, and an attempt that lost its job to a redelivery
(after its worker died) cannot write over the attempt that now owns it.

    store = JobStore(redis.Redis.from_url(url), ttl_s=86400)
    store.create(job_id, style="vangogh")
    store.create(job_id, style="", kind=JobKind.TEACH, classifier="wave")
    if store.start(job_id, attempt):            # worker
        store.progress(job_id, attempt, done, total, eta_s)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import redis
from redis.typing import EncodableT

KEY_PREFIX = "actionstyle:job:"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobKind(StrEnum):
    STYLIZE = "stylize"  # its result is an MP4 at /jobs/{id}/result
    TEACH = "teach"  # its result is a custom classifier at /classifiers/{name}


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

# KEYS[1]: the job. ARGV: allowed states (comma-separated), required owner ('' = any), ttl,
# then field/value pairs to set. Returns {1, previous state} when applied, {0, state} when not
# ('' when the job does not exist).
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0, ''} end
if not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then return {0, state} end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return {0, state} end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, state}
"""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: JobState
    style: str
    frames_done: int
    frames_total: int
    eta_s: float | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    client: str = ""  # hash of the API key that created the job; '' without keys
    strength: float = 1.0  # how strongly the style applies (jobs from before it existed: 1)
    kind: JobKind = JobKind.STYLIZE
    classifier: str = ""  # a teach job's classifier name; '' for a stylize job

    @property
    def progress(self) -> float:
        if self.state is JobState.SUCCEEDED:
            return 1.0
        if not self.frames_total:
            return 0.0
        return min(self.frames_done / self.frames_total, 0.999)


def redis_text(value: bytes | str) -> str:
    """A Redis reply as text (bytes from our clients, str from one with decode_responses=True)."""
    return value if isinstance(value, str) else value.decode()


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _record(job_id: str, fields: dict[str, str]) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        state=JobState(fields["state"]),
        style=fields.get("style", ""),
        frames_done=int(fields.get("frames_done") or 0),
        frames_total=int(fields.get("frames_total") or 0),
        eta_s=_float(fields.get("eta_s")),
        error=fields.get("error") or None,
        created_at=float(fields["created_at"]),
        started_at=_float(fields.get("started_at")),
        finished_at=_float(fields.get("finished_at")),
        client=fields.get("client", ""),
        strength=float(fields.get("strength") or 1.0),
        kind=_kind(fields),
        classifier=fields.get("classifier", ""),
    )


def _kind(fields: dict[str, str]) -> JobKind:
    """The stored kind; a job stored before kinds were recorded: a teach job had no style."""
    if fields.get("kind"):
        return JobKind(fields["kind"])
    return JobKind.TEACH if fields.get("style", "") == "" else JobKind.STYLIZE


class JobStore:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._transition = client.register_script(_TRANSITION)

    @staticmethod
    def key(job_id: str) -> str:
        return KEY_PREFIX + job_id

    def create(
        self,
        job_id: str,
        style: str,
        client: str = "",
        strength: float = 1.0,
        kind: JobKind = JobKind.STYLIZE,
        classifier: str = "",
    ) -> JobRecord:
        fields = {"state": JobState.QUEUED.value, "style": style, "created_at": repr(time.time())}
        fields |= {"client": client, "strength": repr(strength), "kind": kind.value}
        fields |= {"classifier": classifier}
        mapping: dict[EncodableT, EncodableT] = dict(fields.items())  # hset's key type is invariant
        with self.client.pipeline() as pipe:
            pipe.hset(self.key(job_id), mapping=mapping)
            pipe.expire(self.key(job_id), self.ttl_s)
            pipe.execute()
        return _record(job_id, fields)

    def get(self, job_id: str) -> JobRecord | None:
        fields = self.client.hgetall(self.key(job_id))
        if not fields:
            return None
        return _record(job_id, {redis_text(k): redis_text(v) for k, v in fields.items()})

    def _apply(
        self, job_id: str, allowed: set[JobState], owner: str, fields: Mapping[str, object]
    ) -> tuple[bool, JobState | None]:
        pairs = [str(item) for pair in fields.items() for item in pair]
        args: list[EncodableT] = [",".join(sorted(allowed)), owner, self.ttl_s, *pairs]
        applied, state = self._transition(keys=[self.key(job_id)], args=args)
        return bool(applied), JobState(state.decode()) if state else None

    def start(self, job_id: str, attempt: str, worker: str) -> bool:
        """Claim the job for `attempt`; False when it was cancelled, finished or expired.

        A running job can be claimed again: that is a redelivery after its worker died.
        """
        applied, _ = self._apply(
            job_id,
            {JobState.QUEUED, JobState.RUNNING},
            "",
            {
                "state": JobState.RUNNING.value,
                "owner": attempt,
                "worker": worker,
                "started_at": repr(time.time()),
                "frames_done": 0,
                "eta_s": "",
            },
        )
        return applied

    def count_attempt(self, job_id: str) -> int:
        """One more start of the job; how many there have been."""
        return int(self.client.hincrby(self.key(job_id), "attempts", 1))

    def progress(
        self, job_id: str, attempt: str, done: int, total: int, eta_s: float | None
    ) -> bool:
        """Record progress; False when the attempt must stop (cancelled or superseded)."""
        fields = {
            "frames_done": done,
            "frames_total": total,
            "eta_s": "" if eta_s is None else eta_s,
        }
        applied, _ = self._apply(job_id, {JobState.RUNNING}, attempt, fields)
        return applied

    def finish(self, job_id: str, attempt: str, state: JobState, error: str | None = None) -> bool:
        """Move the attempt's running job to `state`; False when it no longer owns the job."""
        fields: dict[str, object] = {"state": state.value, "finished_at": repr(time.time())}
        fields |= {"error": error or "", "eta_s": 0 if state is JobState.SUCCEEDED else ""}
        applied, _ = self._apply(job_id, {JobState.RUNNING}, attempt, fields)
        return applied

    def cancel(self, job_id: str) -> tuple[bool, JobState | None]:
        """Cancel a queued or running job; returns (applied, the state it was in)."""
        fields = {"state": JobState.CANCELLED.value, "finished_at": repr(time.time()), "eta_s": ""}
        return self._apply(job_id, {JobState.QUEUED, JobState.RUNNING}, "", fields)

    def owned_by(self, job_id: str, attempt: str) -> bool:
        """Whether `attempt` still runs the job (not cancelled, expired or redelivered)."""
        state, owner = self.client.hmget(self.key(job_id), ["state", "owner"])
        return state == JobState.RUNNING.value.encode() and owner == attempt.encode()

    def worker(self, job_id: str) -> str | None:
        """The Celery hostname of the worker running the job (for operators and tests)."""
        value = self.client.hget(self.key(job_id), "worker")
        return redis_text(value) if value else None
