"""The service's configuration: one class, read from `ACTIONSTYLE_*` environment variables.

Built by the app factory (or a test) and handed out through a dependency, never at import time.

    settings = Settings(max_upload_bytes=10_000_000)   # keyword arguments win over the environment
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.video.decode import DecodeLimits

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where the classifier sessions' working memory comes from; see Settings.ort_memory_arena.
MemoryArena = Literal["shared", "per_session", "off"]
StyleRuntime = Literal["onnxruntime", "openvino"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ACTIONSTYLE_",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        # Compose passes every setting as ${VAR:-}: an empty one means "the default".
        env_ignore_empty=True,
    )

    models_dir: Path = Field(
        default=REPO_ROOT / "exported_models",
        description="Folder holding manifest.json and the ONNX files it names.",
    )
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    upload_idle_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="An upload whose client sends nothing for this long is dropped (408), so a "
        "stalled or abandoned connection never holds a request and its spooled file.",
    )
    temp_dir: Path | None = Field(
        default=None, description="Where uploads are spooled while they are processed."
    )
    max_duration_s: float = Field(default=600.0, gt=0)
    max_pixels: int = Field(
        default=DecodeLimits.max_pixels,
        gt=0,
        description="Largest frame (width x height) accepted: one decoded frame must fit in "
        "memory. Larger accepted frames are scaled down for the result.",
    )
    max_pixels_per_second: int = Field(
        default=DecodeLimits.max_pixels_per_second,
        gt=0,
        description="Decoding cost accepted: width x height x frame rate (DCI 4K at 60 fps).",
    )
    max_frames: int = Field(default=60_000, gt=0)
    max_decoded_mb: int = Field(
        default=512,
        gt=0,
        description="Decoded frames one /classify request may hold at once; segment mode with "
        "a window so short that it needs more is refused (422 too_many_segments).",
    )
    ort_intra_op_threads: int = Field(
        default=0,
        ge=0,
        description="Threads per onnxruntime session in the API; a worker process spends as many "
        "on its jobs (OpenCV, and the style network: see stylize_frames_in_flight). 0: the API "
        "lets onnxruntime choose, a worker takes CPU cores / worker concurrency.",
    )
    inference_concurrency: int = Field(
        default=0,
        ge=0,
        description="Classifier inferences run at once per API process; more wait their turn "
        "(decoding goes on meanwhile). Bounds the inference memory in flight, which otherwise "
        "grows with concurrent requests. 0: CPU cores / ort_intra_op_threads (one when "
        "onnxruntime picks the threads: it takes every core for each run).",
    )
    ort_memory_arena: MemoryArena = Field(
        default="shared",
        description="Where the API's onnxruntime sessions (classifiers, style previews) take "
        "their working memory from. "
        "shared: one CPU arena for all of them, so a process holds about the largest model's "
        "working set rather than the sum of all, at full speed; per_session: an arena each "
        "(the same speed, ~25 MiB more with five classifiers); off: no arena (the least memory, "
        "but the default model runs ~1.7x slower, its large tensors allocated afresh each run).",
    )
    # REDIS_URL is what hosting platforms and docker-compose files usually set; honour it too.
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("ACTIONSTYLE_REDIS_URL", "REDIS_URL"),
    )
    broker_url: str = Field(
        default="",
        description="Celery broker when it is not the Redis above (e.g. amqp://... for "
        "RabbitMQ); job states, results and the rate limit stay in that Redis.",
    )
    open_set_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-model override of the open-set threshold chosen on validation data "
        '(JSON, e.g. {"effnet_temporal": 0.2}); larger flags fewer clips as unknown.',
    )
    open_set_min_top1: dict[str, float] = Field(
        default_factory=dict,
        description="Per-model override of the lowest top-1 probability still confident, chosen "
        'on validation data (JSON, e.g. {"effnet_temporal": 0.5}); 0 turns that check off.',
    )
    openvino_classifiers: str = Field(
        default="",
        description="Classifiers the API (and workers' classify jobs) run on OpenVINO rather "
        "than onnxruntime, comma-separated names or 'all': bfloat16 on CPUs with bfloat16 units, "
        "float32 elsewhere. On an AMD EPYC with avx512_bf16 every shipped model is 1.3-2.3x "
        "faster a clip with the same answers (the default: 1.7x the /classify throughput), "
        "but the default alone adds ~165 MiB to each API process.",
    )
    readiness_timeout_s: float = Field(default=0.5, gt=0)
    job_time_limit_s: int = Field(
        default=900,
        gt=0,
        description="Seconds after which a job's worker process is killed; a stylize job whose "
        "video needs more time (see stylize_seconds_per_megapixel) gets that much more.",
    )
    job_soft_time_limit_s: int = Field(
        default=840,
        gt=0,
        description="Seconds after which a job fails as taking too long; a stylize job gets "
        "more when its video needs it.",
    )
    stylize_seconds_per_frame: float = Field(
        default=0.02,
        ge=0,
        description="Time a stylize job is allowed per frame, beside the time per megapixel: "
        "together about three times what the project's 2-core machine takes (a minute of "
        "1280x720 at 30 fps is allowed 17 minutes and takes about 6).",
    )
    stylize_seconds_per_megapixel: float = Field(
        default=0.6,
        ge=0,
        description="Time a stylize job is allowed per megapixel of frames it paints (at the "
        "output size), beside the time per frame.",
    )
    job_visibility_timeout_s: int = Field(
        default=3600, gt=0, description="Seconds before an unacknowledged job is redelivered."
    )
    job_redelivery_check_s: int = Field(
        default=60,
        gt=0,
        description="How often workers look for jobs whose worker died (older than the "
        "visibility timeout) to run them again.",
    )
    job_result_expires_s: int = Field(default=24 * 3600, gt=0)
    job_heartbeat_ttl_s: float = Field(
        default=20.0,
        gt=0,
        description="A running job's heartbeat lasts this long (refreshed every quarter of "
        "it); once it has expired, its worker is taken for dead and the job runs again.",
    )
    job_reaper_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often each worker looks for running jobs whose heartbeat expired.",
    )
    job_state_retry_s: float = Field(
        default=120.0,
        ge=0,
        description="How long a worker retries job-state changes while Redis is away "
        "(restarting, unreachable) before it hands the job back to the queue.",
    )
    ort_providers: str = Field(
        default="cpu",
        description="onnxruntime execution providers in order of preference, comma-separated: "
        "cuda, tensorrt, cpu (e.g. cuda,cpu with the onnxruntime-gpu image); unavailable "
        "ones are skipped.",
    )
    storage_dir: Path = Field(
        default=REPO_ROOT / "storage",
        description="Uploads and results of stylize jobs; shared by the API and the workers.",
    )
    result_ttl_s: int = Field(
        default=24 * 3600, gt=0, description="Seconds a job, its upload and its result are kept."
    )
    stylize_max_side: int = Field(
        default=1280, ge=16, description="Longest side of a stylised video; never upscaled."
    )
    stylize_batch_size: int = Field(default=4, ge=1, le=64)
    stylize_smoothing: float = Field(
        default=0.7, ge=0.0, lt=1.0, description="Weight of the flow-warped previous frame; 0: off."
    )
    style_runtime: StyleRuntime = Field(
        default="openvino",
        description="Where workers run the style networks: openvino (2.4-5x faster on CPUs "
        "with bfloat16 units, whose precision it uses there; float32 elsewhere) or onnxruntime "
        "(float32 everywhere, and the ort_providers, e.g. CUDA). The API's one-frame previews "
        "always use onnxruntime.",
    )
    stylize_frames_in_flight: int = Field(
        default=0,
        ge=0,
        description="Frames a worker paints at once, sharing its threads. 0: one per thread, "
        "the fastest on both runtimes. 1: one frame on all threads, as fast at 1280x720 on "
        "openvino and peaking at 0.9 rather than 1.1 GiB on 2 threads, slower at 320x240.",
    )
    max_style_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    worker_concurrency: int = Field(
        default=1, ge=1, description="Celery worker processes; each gets its share of the cores."
    )
    worker_warm_up: bool = Field(
        default=True,
        description="Each worker process loads and compiles every named style as it starts "
        "(~0.8 s and ~140 MiB for the four), so that its first job does not wait for its style "
        "(~0.3 s). Off: a style loads on its first job.",
    )
    worker_max_memory_mb: int = Field(
        default=768,
        ge=0,
        description="A worker process whose resident memory peaked above this many MiB is "
        "replaced by a fresh one after its job (0: never). A large video leaves its working "
        "memory behind (a 1280x720 job peaks at ~1.1 GiB and keeps ~0.6) where 320x240 jobs "
        "need ~0.3; the fresh process loads the styles again (ACTIONSTYLE_WORKER_WARM_UP).",
    )
    storage_url: str = Field(
        default="",
        description="Where job files live when not in `storage_dir`: s3://bucket/prefix "
        "(any S3-compatible store), so workers on other hosts need no shared disk.",
    )
    s3_endpoint_url: str = Field(
        default="", description="S3 endpoint for MinIO, Ceph, R2...; empty: AWS from the region."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="JSON lines (one object per line) or plain text."
    )
    log_level: str = Field(default="INFO")
    api_keys: str = Field(
        default="",
        repr=False,
        description="Comma-separated API keys; when set, every API route needs X-API-Key.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (https://app.example.com) whose web pages may call "
        "the API from a browser; '*' for any; empty: only the service's own page.",
    )
    max_queued_jobs: int = Field(
        default=200,
        ge=0,
        description="New jobs (stylize, teach) are refused with 503 while this many wait for a "
        "worker, before their upload is read; 0: no limit.",
    )
    stylize_jobs_per_minute: int = Field(
        default=0, ge=0, description="New stylize jobs per API key per minute; 0: no limit."
    )

    teach_max_clips: int = Field(
        default=200, ge=6, description="Most training clips one POST /classifiers may send."
    )
    teach_max_upload_bytes: int = Field(
        default=500 * 1024 * 1024,
        gt=0,
        description="Largest POST /classifiers body: every clip, or the archive, together.",
    )
    teach_max_unpacked_bytes: int = Field(
        default=1024 * 1024 * 1024,
        gt=0,
        description="Most bytes a training archive may unpack to; unpacking stops there.",
    )

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def api_key_set(self) -> frozenset[str]:
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    def worker_threads(self) -> int:
        """Inference threads per worker process, so N workers do not oversubscribe."""
        if self.ort_intra_op_threads:
            return self.ort_intra_op_threads
        return max(1, (os.cpu_count() or 1) // self.worker_concurrency)

    def stylize_parallelism(self) -> tuple[int, int]:
        """A worker's (frames painted at once, threads per frame) for style jobs."""
        return paint_parallelism(self.worker_threads(), self.stylize_frames_in_flight)

    def ort_provider_names(self) -> list[str]:
        """onnxruntime's names for `ort_providers`, the ones this onnxruntime build has."""
        import onnxruntime as ort

        names = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
        names |= {"cpu": "CPUExecutionProvider", "rocm": "ROCMExecutionProvider"}
        available = set(ort.get_available_providers())
        wanted = [names.get(p.strip().lower(), p.strip()) for p in self.ort_providers.split(",")]
        chosen = [name for name in wanted if name in available]
        return chosen or ["CPUExecutionProvider"]

    def openvino_classifier_names(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.openvino_classifiers.split(",") if n.strip())

    def inference_slots(self) -> int:
        """As set, else as many runs as the cores hold at the threads each takes (onnxruntime's
        own choice is a thread per core: one run at a time)."""
        if self.inference_concurrency:
            return self.inference_concurrency
        cores = os.cpu_count() or 1
        return max(1, cores // (self.ort_intra_op_threads or cores))

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
            max_pixels_per_second=self.max_pixels_per_second,
            max_frames=self.max_frames,
            max_decoded_bytes=self.max_decoded_mb * 2**20,
        )


def paint_parallelism(threads: int, frames_in_flight: int) -> tuple[int, int]:
    """(frames painted at once, threads per frame) for `threads` threads; `frames_in_flight` 0
    paints a frame per thread, the fastest on both runtimes in a job (docs/benchmarks.md):
    onnxruntime leaves a second thread idle through much of a frame; OpenVINO keeps both busy
    on one frame when alone, but in a job, beside its decode, flow and encode threads, one
    frame on two threads waits whenever either thread is held up (320x240 jobs 3.5 % slower
    and up to 1.3x on some runs, as fast at 1280x720 but ~0.2 GiB lighter there)."""
    if not frames_in_flight:
        frames_in_flight = threads
    return frames_in_flight, max(1, threads // frames_in_flight)
