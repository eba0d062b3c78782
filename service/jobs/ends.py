"""Wake held `GET /jobs/{id}?wait=` requests the moment their job ends.

A job store publishes a job's id on `ENDED_CHANNEL` when the job succeeds, fails or is
cancelled; each API process keeps one subscription to it and wakes the requests waiting for that
job. A message can be lost (Redis restarting, the subscription reconnecting): that costs only
time, since waiting requests read their job again every `CHECK_S` anyway.

    ends = JobEnds(redis_url)
    task = asyncio.create_task(ends.listen())        # for the life of the process
    with ends.watch(job_id) as ended:                # before reading the job, so no end is missed
        await asyncio.wait_for(ended.wait(), 1.0)
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
import redis.exceptions

from service.jobs.state import ENDED_CHANNEL

logger = logging.getLogger(__name__)

CHECK_S = 1.0  # a waiting request reads its job at least this often, published or not
RECONNECT_S = 1.0
_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class JobEnds:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._waiting: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set when `job_id` is announced as ended, for the life of the block."""
        event = asyncio.Event()
        self._waiting[job_id].add(event)
        try:
            yield event
        finally:
            events = self._waiting[job_id]
            events.discard(event)
            if not events:
                del self._waiting[job_id]

    def _announce(self, job_id: str) -> None:
        for event in self._waiting.get(job_id, ()):
            event.set()

    async def listen(self) -> None:
        """Subscribe and wake waiters until cancelled, subscribing again whenever Redis is lost."""
        away = False
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=RECONNECT_S)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as subscription:
                    await subscription.subscribe(ENDED_CHANNEL)
                    if away:
                        logger.info("job ends: subscribed again")
                    away = False
                    while True:
                        message = await subscription.get_message(timeout=CHECK_S)
                        if message and message["type"] == "message":
                            self._announce(message["data"].decode())
            except _LOST as exc:
                if not away:
                    logger.warning("job ends: redis is away (%s); waiting requests poll", exc)
                away = True
            finally:
                await client.aclose()
            await asyncio.sleep(RECONNECT_S)
