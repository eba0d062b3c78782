"""Prometheus metrics for GET /metrics, correct with several API and worker processes.

- Per-process metrics (requests, latencies, classify inference) use prometheus_client; with
  several API processes set PROMETHEUS_MULTIPROC_DIR (an empty folder per host, before start)
  and /metrics merges every process's files.
- Cluster-wide numbers are read from Redis when scraped, so any API process reports the same:
  jobs by state, queue length, workers running, and the frames and seconds workers on every
  host have stylised.

    REQUESTS.labels("GET", "/healthz", "200").inc()
    body, content_type = render_metrics(redis_client)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from service.jobs.state import HEARTBEAT_SUFFIX, KEY_PREFIX, WORKERS_SET, JobState, redis_text

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "actionstyle_http_requests",
    "HTTP requests by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "actionstyle_http_request_duration_seconds",
    "Time to answer, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CLASSIFY_SECONDS = Histogram(
    "actionstyle_classify_seconds",
    "Classify time per clip, by model and stage.",
    ["model", "stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

STYLIZE_TOTALS_KEY = "actionstyle:metrics:stylize"
# Celery's Redis transport keeps one list per priority step: "celery", "celery\x06\x163", ...
QUEUE_NAME = "celery"
_PRIORITY_SEP = "\x06\x16"
_SCAN_LIMIT = 100_000  # jobs expire after their TTL; this only bounds a pathological backlog


def record_classify(model: str, decode_ms: float, inference_ms: float) -> None:
    CLASSIFY_SECONDS.labels(model, "decode").observe(decode_ms / 1000)
    CLASSIFY_SECONDS.labels(model, "inference").observe(inference_ms / 1000)


def record_stylized(client: redis.Redis, frames: int, seconds: float) -> None:
    """A worker's finished job: frames stylised and seconds spent, summed in Redis."""
    with client.pipeline() as pipe:
        pipe.hincrby(STYLIZE_TOTALS_KEY, "frames", frames)
        pipe.hincrbyfloat(STYLIZE_TOTALS_KEY, "seconds", seconds)
        pipe.hincrby(STYLIZE_TOTALS_KEY, "jobs", 1)
        pipe.execute()


class RedisCollector(Collector):
    """Jobs by state, queue length and stylise totals, read from Redis at each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("actionstyle_redis_up", "1 when Redis answered this scrape.")
        try:
            families = list(self._families())
        except redis.RedisError as exc:
            logger.warning("metrics: redis does not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = dict.fromkeys((state.value for state in JobState), 0)
        keys = []
        for key in self.client.scan_iter(match=KEY_PREFIX + "*", count=1000):
            if key.endswith(HEARTBEAT_SUFFIX.encode()):  # a running job's heartbeat, not a job
                continue
            keys.append(key)
            if len(keys) >= _SCAN_LIMIT:
                break
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "state")
            for state in pipe.execute():
                if state is not None and state.decode() in counts:
                    counts[state.decode()] += 1
        jobs = GaugeMetricFamily(
            "actionstyle_jobs", "Stylize jobs kept, by state.", labels=["state"]
        )
        for state, count in counts.items():
            jobs.add_metric([state], count)
        yield jobs

        names = [QUEUE_NAME] + [f"{QUEUE_NAME}{_PRIORITY_SEP}{step}" for step in (3, 6, 9)]
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            pipe.hlen("unacked")
            *lengths, unacked = pipe.execute()
        queue = GaugeMetricFamily("actionstyle_queue_length", "Jobs waiting for a worker.")
        queue.add_metric([], sum(lengths))
        yield queue
        taken = GaugeMetricFamily(
            "actionstyle_queue_unacked", "Jobs a worker has taken and not yet acknowledged."
        )
        taken.add_metric([], unacked)
        yield taken
        workers = GaugeMetricFamily(
            "actionstyle_workers", "Workers running (each announces itself every few seconds)."
        )
        workers.add_metric([], self.client.zcount(WORKERS_SET, time.time(), "+inf"))
        yield workers

        replies = self.client.hgetall(STYLIZE_TOTALS_KEY)
        totals = {redis_text(k): float(v) for k, v in replies.items()}
        for name, field, text in (
            ("actionstyle_stylize_frames", "frames", "Frames stylised by every worker."),
            ("actionstyle_stylize_worker_seconds", "seconds", "Worker seconds spent stylising."),
            ("actionstyle_stylize_jobs_succeeded", "jobs", "Stylize jobs that succeeded."),
        ):
            family = CounterMetricFamily(name, text + " Frames/s: rate(frames) / rate(seconds).")
            family.add_metric([], totals.get(field, 0.0))
            yield family


def render_metrics(client: redis.Redis) -> tuple[bytes, str]:
    """The exposition text: this process's (or every process's) metrics plus Redis's view."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    cluster = CollectorRegistry()
    cluster.register(RedisCollector(client))
    return body + generate_latest(cluster), CONTENT_TYPE_LATEST
