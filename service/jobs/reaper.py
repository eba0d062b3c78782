"""Jobs whose worker died run again within seconds: heartbeats while a job runs, and a reaper.

Celery's own redelivery of an unacknowledged job waits for the broker's visibility timeout (an
hour by default, and it must stay above the longest job), so a worker lost to SIGKILL, the OOM
killer or a dead host would leave its job `running` that long. Instead each attempt refreshes a
heartbeat key (`ACTIONSTYLE_JOB_HEARTBEAT_TTL_S`, 20 s, refreshed every quarter of that) from a
thread of the task, and every worker's main process sweeps the running jobs every
`ACTIONSTYLE_JOB_REAPER_INTERVAL_S` (5 s): a job whose heartbeat has expired is sent again as
the same Celery task with the same job id, and put back to `queued`. One reaper wins each job
(a Redis SET NX lock, then a state change that checks the dead attempt still owns it); the new
attempt claims the job only while no heartbeat beats, writes its result under the job id and
marks it succeeded once, so a late duplicate delivery changes nothing.

    reaper = Reaper(store, send=app.send_task, interval_s=5)
    reaper.start()              # a daemon thread; reaper.sweep() runs one pass

Each sweep also announces the worker (`JobStore.announce_worker`), so a queued job and
/metrics can tell when no worker is running at all.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from service.jobs.state import REDIS_AWAY, JobStore

logger = logging.getLogger(__name__)

LOCK_PREFIX = "actionstyle:reap:"
# send(name, args=..., kwargs=..., task_id=..., [soft_]time_limit=...), as Celery.send_task.
SendTask = Callable[..., Any]


class Reaper:
    def __init__(self, store: JobStore, send: SendTask, interval_s: float, name: str = "") -> None:
        self.store, self.send, self.interval_s = store, send, interval_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        """Say this worker runs, for a few sweeps: queued jobs tell when no worker does."""
        self.store.announce_worker(self.name, ttl_s=3 * self.interval_s + 5)

    def redis_settled(self) -> bool:
        """False right after Redis (re)started: heartbeats written before a restart may have
        expired while it was down, so their jobs get one heartbeat period to beat again."""
        uptime = int(self.store.client.info("server")["uptime_in_seconds"])
        return uptime >= self.store.heartbeat_ttl_s

    def sweep(self) -> list[str]:
        """One pass: queue again every running job whose heartbeat stopped; their ids. Also
        drops from the queued list the jobs that left it unseen (expired while queued)."""
        self.store.forget_stale_queued()
        if not self.redis_settled():
            return []
        requeued = []
        for job_id in self.store.running_jobs():
            dead = self.store.dead_attempt(job_id)
            if dead is None:
                continue
            task = self.store.task_of(job_id)
            if task is None:
                logger.warning("job %s lost its worker but its task is unknown", job_id)
                continue
            lock = LOCK_PREFIX + job_id
            if not self.store.client.set(lock, dead, nx=True, ex=max(1, round(self.interval_s))):
                continue  # another worker's reaper has it
            name, options = task
            self.send(name, task_id=job_id, **options)
            if self.store.requeue(job_id, dead):
                logger.warning("job %s lost its worker; queued again", job_id)
                requeued.append(job_id)
        return requeued

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.announce()
                self.sweep()
            except REDIS_AWAY as exc:
                logger.info("reaper: redis is away (%s); trying again", exc)
            except Exception:  # the reaper must outlive any one bad job record
                logger.exception("reaper: sweep failed")

    def start(self) -> None:
        with suppress(*REDIS_AWAY):  # else the first sweep announces it
            self.announce()
        self._thread = threading.Thread(target=self._run, name="job-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        with suppress(*REDIS_AWAY):
            self.store.forget_worker(self.name)


class Heartbeat:
    """Refreshes an attempt's heartbeat from a thread while its job runs (a context manager).

    The claim (`JobStore.start`) writes the first beat; this keeps it alive until the attempt
    ends. While Redis is away the beats are skipped; once the process dies they stop.
    """

    def __init__(self, store: JobStore, job_id: str, attempt: str) -> None:
        self.store, self.job_id, self.attempt = store, job_id, attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        every = self.store.heartbeat_ttl_s / 4
        while not self._stop.wait(every):
            with suppress(*REDIS_AWAY):  # beats again once Redis is back
                self.store.heartbeat(self.job_id, self.attempt)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
