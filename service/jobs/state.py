"""The state of each job (stylize or teach), in Redis, so the API knows it whatever Celery is doing.

One hash per job (`actionstyle:job:<id>`), expiring `ttl_s` after its last change. Every change is
one Lua script that checks the state it moves from, so a cancel and a worker never race: a
cancelled job cannot be started or finished, and an attempt that lost its job to a redelivery
(after its worker died) cannot write over the attempt that now owns it.

A queued job is listed in `actionstyle:jobs:queued` by when it joined the queue, so its place
in the line (`JobRecord.queue_position`) and the queue's length cost one Redis call each.
Each worker announces itself in `actionstyle:workers` every few seconds, so a queued job can say
when no worker is running to take it (`JobRecord.workers_online`).
A running job has a heartbeat (`actionstyle:job:<id>:heartbeat`, expiring `heartbeat_ttl_s`
after its last refresh) and is listed in `actionstyle:jobs:running`, so `service.jobs.reaper`
can find a job whose worker died and queue it again. A worker's store (`retry_s` > 0) retries
state changes through a Redis outage of up to `retry_s` seconds; progress is skipped meanwhile.

    store = JobStore(redis.Redis.from_url(url), ttl_s=86400)
    store.create(job_id, style="vangogh")
    store.create(job_id, style="", kind=JobKind.TEACH, classifier="wave")
    if store.start(job_id, attempt):            # worker
        store.progress(job_id, attempt, done, total, eta_s)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

import redis
from redis.typing import EncodableT

KEY_PREFIX = "actionstyle:job:"
HEARTBEAT_SUFFIX = ":heartbeat"
RUNNING_SET = "actionstyle:jobs:running"
# A job's id is published here as it ends (service/jobs/ends.py wakes the requests waiting).
ENDED_CHANNEL = "actionstyle:job-ended"
QUEUED_SET = "actionstyle:jobs:queued"  # sorted by when each job joined the queue
# Each worker's name, scored by when its presence lapses unless it announces itself again.
WORKERS_SET = "actionstyle:workers"
# Errors that say Redis is away (restarting, loading its append-only file, unreachable), not that
# a command is wrong: worth waiting for.
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError)

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


# A claim: like _TRANSITION from queued or running, but a running job is taken over only when
# its heartbeat has stopped (its worker died), never from a live attempt. KEYS: the job, its
# heartbeat, the running set, the queued set. ARGV: attempt, worker, now, ttl, heartbeat ttl
# (ms), job id.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0, ''} end
if state ~= 'queued' and state ~= 'running' then return {0, state} end
if state == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then return {0, state} end
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'worker', ARGV[2],
           'started_at', ARGV[3], 'frames_done', 0, 'eta_s', '')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[5]))
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('ZREM', KEYS[4], ARGV[6])
return {1, state}
"""

# KEYS: the job, its heartbeat. ARGV: attempt, heartbeat ttl (ms). Refreshes the heartbeat while
# the attempt still owns the running job; 0 when it does not (cancelled, finished, superseded).
_BEAT = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

# KEYS: the job, its heartbeat, the running set, the queued set. ARGV: the dead attempt, job id,
# ttl, now. Puts a running job whose heartbeat has stopped back to queued, at the end of the
# line (its task is sent again, behind the others); 1 when this call did it.
_REQUEUE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  redis.call('SREM', KEYS[3], ARGV[2])
  return 0
end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'owner', '', 'eta_s', '')
redis.call('HINCRBY', KEYS[1], 'requeues', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), ARGV[2])
return 1
"""


class JobStateUnavailable(RuntimeError):
    """Redis stayed away longer than the store retries: the job's state could not be changed."""


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
    queue_position: int | None = None  # queued jobs ahead of it, while it is queued
    source: str = ""  # the uploaded file's name without its extension; '' when it had none
    workers_online: int | None = None  # workers running, while it is queued

    @property
    def result_name(self) -> str | None:
        """The file name a stylize job's result downloads as, as the command line names it."""
        if self.kind is not JobKind.STYLIZE:
            return None
        return f"{self.source or 'stylized'}.{self.style}.mp4"

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


def _record(
    job_id: str,
    fields: dict[str, str],
    queue_position: int | None = None,
    workers_online: int | None = None,
) -> JobRecord:
    queued = fields["state"] == JobState.QUEUED.value
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
        queue_position=queue_position if queued else None,
        source=fields.get("source", ""),
        workers_online=workers_online if queued else None,
    )


def _kind(fields: dict[str, str]) -> JobKind:
    """The stored kind; a job stored before kinds were recorded: a teach job had no style."""
    if fields.get("kind"):
        return JobKind(fields["kind"])
    return JobKind.TEACH if fields.get("style", "") == "" else JobKind.STYLIZE


class JobStore:
    def __init__(
        self,
        client: redis.Redis,
        ttl_s: int,
        retry_s: float = 0.0,
        heartbeat_ttl_s: float = 20.0,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.retry_s = retry_s  # 0: fail at once (the API answers 503 instead of waiting)
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self._transition = client.register_script(_TRANSITION)
        self._claim = client.register_script(_CLAIM)
        self._beat = client.register_script(_BEAT)
        self._requeue = client.register_script(_REQUEUE)
        self._away_until = 0.0  # owned_by's checks pause this long after Redis went away

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """`call`, tried again with backoff while Redis is away, for up to `retry_s` seconds."""
        deadline = time.monotonic() + self.retry_s
        delay = 0.1
        while True:
            try:
                return call()
            except REDIS_AWAY as exc:
                if time.monotonic() + delay > deadline:
                    if self.retry_s:
                        raise JobStateUnavailable(
                            f"redis stayed away for {self.retry_s:.0f} s: {what} not recorded"
                        ) from exc
                    raise
                logger.warning("redis is away (%s); %s again in %.1f s", exc, what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @staticmethod
    def heartbeat_key(job_id: str) -> str:
        return KEY_PREFIX + job_id + HEARTBEAT_SUFFIX

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
        source: str = "",
    ) -> JobRecord:
        now = time.time()
        fields = {"state": JobState.QUEUED.value, "style": style, "created_at": repr(now)}
        fields |= {"client": client, "strength": repr(strength), "kind": kind.value}
        fields |= {"classifier": classifier, "source": source}
        mapping: dict[EncodableT, EncodableT] = dict(fields.items())  # hset's key type is invariant
        with self.client.pipeline() as pipe:
            pipe.hset(self.key(job_id), mapping=mapping)
            pipe.expire(self.key(job_id), self.ttl_s)
            pipe.zadd(QUEUED_SET, {job_id: now})
            pipe.zrank(QUEUED_SET, job_id)
            pipe.zcount(WORKERS_SET, now, "+inf")
            *_, position, workers = pipe.execute()
        return _record(job_id, fields, position, workers)

    def get(self, job_id: str) -> JobRecord | None:
        def read() -> list:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.key(job_id))
                pipe.zrank(QUEUED_SET, job_id)
                pipe.zcount(WORKERS_SET, time.time(), "+inf")
                return pipe.execute()

        fields, position, workers = self._retrying("reading the job", read)
        if not fields:
            return None
        text = {redis_text(k): redis_text(v) for k, v in fields.items()}
        return _record(job_id, text, position, workers)

    def queued_count(self) -> int:
        """Jobs waiting for a worker."""
        return cast(int, self.client.zcard(QUEUED_SET))

    def announce_worker(self, name: str, ttl_s: float) -> None:
        """Count the worker `name` as running for the next `ttl_s` seconds."""
        now = time.time()
        with self.client.pipeline() as pipe:
            pipe.zadd(WORKERS_SET, {name: now + ttl_s})
            pipe.zremrangebyscore(WORKERS_SET, "-inf", now)  # those that stopped announcing
            pipe.execute()

    def forget_worker(self, name: str) -> None:
        self.client.zrem(WORKERS_SET, name)

    def workers_online(self) -> int:
        """Workers that announced themselves and whose presence has not lapsed."""
        return cast(int, self.client.zcount(WORKERS_SET, time.time(), "+inf"))

    def discard(self, job_id: str) -> None:
        """Forget a job that never reached the queue (its task could not be sent)."""
        with self.client.pipeline() as pipe:
            pipe.delete(self.key(job_id))
            pipe.zrem(QUEUED_SET, job_id)
            pipe.execute()

    def forget_stale_queued(self) -> list[str]:
        """Drop from the queued list the jobs that are no longer queued (expired, or moved on
        while Redis dropped the change to the list); their ids."""
        members = cast(list[bytes], self.client.zrange(QUEUED_SET, 0, -1))
        listed = [redis_text(member) for member in members]
        if not listed:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for job_id in listed:
                pipe.hget(self.key(job_id), "state")
            states = pipe.execute()
        stale = [
            job_id
            for job_id, state in zip(listed, states, strict=True)
            if state is None or redis_text(state) != JobState.QUEUED.value
        ]
        if stale:
            self.client.zrem(QUEUED_SET, *stale)
        return stale

    def _apply(
        self, job_id: str, allowed: set[JobState], owner: str, fields: Mapping[str, object]
    ) -> tuple[bool, JobState | None]:
        pairs = [str(item) for pair in fields.items() for item in pair]
        args: list[EncodableT] = [",".join(sorted(allowed)), owner, self.ttl_s, *pairs]
        applied, state = self._retrying(
            f"moving job {job_id} to {fields.get('state', 'its new state')}",
            lambda: self._transition(keys=[self.key(job_id)], args=args),
        )
        if applied and fields.get("state") in FINISHED:
            # Wakes the API's held ?wait= requests at once; one lost costs them a second at most.
            with suppress(*REDIS_AWAY):
                self.client.publish(ENDED_CHANNEL, job_id)
        return bool(applied), JobState(state.decode()) if state else None

    def start(self, job_id: str, attempt: str, worker: str) -> bool:
        """Claim the job for `attempt`; False when it was cancelled, finished or expired, or
        another attempt is alive on it (its heartbeat still beats).

        A running job whose heartbeat has stopped can be claimed again: that is a redelivery
        after its worker died. The claim starts the attempt's heartbeat.
        """
        keys = [self.key(job_id), self.heartbeat_key(job_id), RUNNING_SET, QUEUED_SET]
        args: list[EncodableT] = [attempt, worker, repr(time.time()), self.ttl_s]
        args += [int(self.heartbeat_ttl_s * 1000), job_id]
        applied, _ = self._retrying(
            f"claiming job {job_id}", lambda: self._claim(keys=keys, args=args)
        )
        return bool(applied)

    def heartbeat(self, job_id: str, attempt: str) -> bool:
        """Refresh the attempt's heartbeat; False once it no longer owns the running job.

        Raises a Redis error while Redis is away (the caller just tries again later).
        """
        keys = [self.key(job_id), self.heartbeat_key(job_id)]
        return bool(self._beat(keys=keys, args=[attempt, int(self.heartbeat_ttl_s * 1000)]))

    def remember_task(
        self,
        job_id: str,
        task: str,
        args: list,
        kwargs: dict,
        time_limits: tuple[int | None, int | None] = (None, None),
    ) -> None:
        """Keep the Celery task that runs the job, so the reaper can send it again, with its
        own (soft, hard) time limits where it was given some."""
        message = json.dumps(
            {"task": task, "args": args, "kwargs": kwargs, "time_limits": list(time_limits)}
        )
        key = self.key(job_id)

        def store() -> None:
            if self.client.exists(key):  # never bring an expired job back
                self.client.hset(key, "task", message)

        self._retrying(f"recording job {job_id}'s task", store)

    def task_of(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """The Celery task that runs the job, if one was recorded: its name, and the keyword
        arguments that send it again (`Celery.send_task`'s args, kwargs, time limits)."""
        raw = self.client.hget(self.key(job_id), "task")
        if not raw:
            return None
        message = json.loads(raw)
        options = {"args": message["args"], "kwargs": message["kwargs"]}
        soft_s, hard_s = message.get("time_limits") or (None, None)
        if soft_s is not None:
            options["soft_time_limit"] = soft_s
        if hard_s is not None:
            options["time_limit"] = hard_s
        return message["task"], options

    def running_jobs(self) -> list[str]:
        return sorted(redis_text(member) for member in self.client.smembers(RUNNING_SET))

    def dead_attempt(self, job_id: str) -> str | None:
        """The owner of a running job whose heartbeat has stopped; None when it is alive, or
        the job is no longer running (it then leaves the running list)."""
        with self.client.pipeline() as pipe:
            pipe.hmget(self.key(job_id), ["state", "owner"])
            pipe.exists(self.heartbeat_key(job_id))
            (state, owner), beating = pipe.execute()
        if state != JobState.RUNNING.value.encode():
            self.client.srem(RUNNING_SET, job_id)
            return None
        return None if beating else redis_text(owner or b"")

    def requeue(self, job_id: str, dead_attempt: str) -> bool:
        """Put a running job whose attempt died back to queued; True when this call did it."""
        keys = [self.key(job_id), self.heartbeat_key(job_id), RUNNING_SET, QUEUED_SET]
        args: list[EncodableT] = [dead_attempt, job_id, self.ttl_s, repr(time.time())]
        return bool(self._requeue(keys=keys, args=args))

    def count_attempt(self, job_id: str) -> int:
        """One more start of the job; how many there have been."""
        return int(
            self._retrying(
                f"counting job {job_id}'s attempts",
                lambda: self.client.hincrby(self.key(job_id), "attempts", 1),
            )
        )

    def progress(
        self, job_id: str, attempt: str, done: int, total: int, eta_s: float | None
    ) -> bool:
        """Record progress; False when the attempt must stop (cancelled or superseded)."""
        fields = {
            "frames_done": done,
            "frames_total": total,
            "eta_s": "" if eta_s is None else eta_s,
        }
        pairs = [str(item) for pair in fields.items() for item in pair]
        args: list[EncodableT] = [JobState.RUNNING.value, attempt, self.ttl_s, *pairs]
        try:
            applied, _ = self._transition(keys=[self.key(job_id)], args=args)
        except REDIS_AWAY as exc:  # progress can wait for Redis to come back; the job goes on
            logger.warning("redis is away (%s); progress of job %s not recorded", exc, job_id)
            return True
        return bool(applied)

    def finish(self, job_id: str, attempt: str, state: JobState, error: str | None = None) -> bool:
        """Move the attempt's running job to `state`; False when it no longer owns the job."""
        fields: dict[str, object] = {"state": state.value, "finished_at": repr(time.time())}
        fields |= {"error": error or "", "eta_s": 0 if state is JobState.SUCCEEDED else ""}
        applied, _ = self._apply(job_id, {JobState.RUNNING}, attempt, fields)
        if applied:
            self._retrying(f"ending job {job_id}'s heartbeat", lambda: self._unlist(job_id))
        return applied

    def _unlist(self, job_id: str) -> None:
        with self.client.pipeline() as pipe:
            pipe.delete(self.heartbeat_key(job_id))
            pipe.srem(RUNNING_SET, job_id)
            pipe.execute()

    def cancel(self, job_id: str) -> tuple[bool, JobState | None]:
        """Cancel a queued or running job; returns (applied, the state it was in)."""
        fields = {"state": JobState.CANCELLED.value, "finished_at": repr(time.time()), "eta_s": ""}
        applied, previous = self._apply(job_id, {JobState.QUEUED, JobState.RUNNING}, "", fields)
        if applied and previous is JobState.QUEUED:
            with suppress(*REDIS_AWAY):  # else the reaper drops it from the list
                self.client.zrem(QUEUED_SET, job_id)
        return applied, previous

    def owned_by(self, job_id: str, attempt: str) -> bool:
        """Whether `attempt` still runs the job (not cancelled, expired or redelivered).

        Assumed while Redis is away (checked again a second later): the job goes on, and its
        end is recorded only if the attempt still owns the job then.
        """
        if time.monotonic() < self._away_until:
            return True
        try:
            state, owner = self.client.hmget(self.key(job_id), ["state", "owner"])
        except REDIS_AWAY:
            self._away_until = time.monotonic() + 1.0
            return True
        return (
            redis_text(state or b"") == JobState.RUNNING.value
            and redis_text(owner or b"") == attempt
        )

    def worker(self, job_id: str) -> str | None:
        """The Celery hostname of the worker running the job (for operators and tests)."""
        value = self.client.hget(self.key(job_id), "worker")
        return redis_text(value) if value else None
