"""Restyling a folder of clips: several jobs in flight, results already there skipped.

    run = FolderRun(client, plan_folder(Path("clips"), Path("out")), style="monet", in_flight=2)
    report = run.run(log=print)        # on Ctrl-C, cancel what `run.in_flight_jobs` holds

Each clip's result is `OUT/<clip stem>.mp4`, written whole or not at all (through a `.part`
file), so running the same command again after an interruption does only what is left.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from actionstyle_client.client import AWAY, Client, Job, ServiceAway
from actionstyle_client.errors import InputRejected

# What the server accepts (service/video/upload.py); other files in the folder are left alone.
VIDEO_SUFFIXES = frozenset(
    {".avi", ".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".mpeg", ".mpg", ".vob", ".mts", ".m2ts"}
    | {".ts", ".wmv", ".asf", ".webm", ".mkv"}
)
# Refusals that concern the style, not the clip: every other clip would be refused too.
STYLE_CODES = frozenset(
    {"unknown_style", "invalid_style_choice", "invalid_style_image", "invalid_strength"}
)


def videos_in(paths: list[Path]) -> list[Path]:
    """The clips named: files as they are (the server judges them), folders' videos in name
    order; FileNotFoundError for a path that is not there, ValueError for a folder without any."""
    clips: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            )
            if not inside:
                kinds = ", ".join(sorted(VIDEO_SUFFIXES))
                raise ValueError(f"{path} holds no video ({kinds})")
            clips += inside
        elif path.is_file():
            clips.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return clips


@dataclass
class FolderPlan:
    todo: list[tuple[Path, Path]]  # (clip, result path)
    skipped: list[Path]  # clips whose result is already there


def plan_folder(src_dir: Path, out_dir: Path) -> FolderPlan:
    """Pair each clip of `src_dir` with `out_dir/<stem>.mp4`; ValueError if two share a stem."""
    clips = sorted(
        p for p in src_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    by_stem: dict[str, Path] = {}
    for clip in clips:
        if clip.stem in by_stem:
            raise ValueError(
                f"{by_stem[clip.stem].name} and {clip.name} would both be {clip.stem}.mp4"
            )
        by_stem[clip.stem] = clip
    plan = FolderPlan([], [])
    for clip in clips:
        dest = out_dir / f"{clip.stem}.mp4"
        if dest.exists():
            plan.skipped.append(clip)
        else:
            plan.todo.append((clip, dest))
    return plan


@dataclass
class FolderReport:
    done: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


@dataclass
class FolderRun:
    """Submits up to `in_flight` jobs at a time, downloads each result as its job succeeds."""

    client: Client
    plan: FolderPlan
    style: str | None = None
    style_image: Path | None = None
    strength: float = 1.0
    in_flight: int = 2
    poll_s: float = 0.5
    patience_s: float = 120.0  # how long the service may be away while jobs are followed
    in_flight_jobs: dict[str, tuple[Job, Path, Path]] = field(default_factory=dict)

    def run(self, log: Callable[[str], None]) -> FolderReport:
        report, pending = FolderReport(), deque(self.plan.todo)
        total = len(pending)
        away = ServiceAway(self.client, self.patience_s)
        while pending or self.in_flight_jobs:
            while pending and len(self.in_flight_jobs) < self.in_flight:
                clip, dest = pending.popleft()
                self._submit(clip, dest, report, log)
            for job_id, (job, clip, dest) in list(self.in_flight_jobs.items()):
                try:
                    status = job.status()
                except AWAY as exc:
                    count = len(self.in_flight_jobs)
                    away.failed(exc, f"{count} job{'' if count == 1 else 's'}")
                    break
                away.answered()
                if not status.state.finished:
                    continue
                del self.in_flight_jobs[job_id]
                if status.state == "succeeded":
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    job.download(dest)
                    report.done.append(clip)
                    log(f"[{len(report.done) + len(report.failed)}/{total}] {clip.name} -> {dest}")
                else:
                    report.failed[clip] = f"job {status.state.value}: {status.error or ''}".strip()
                    log(
                        f"[{len(report.done) + len(report.failed)}/{total}] {clip.name}: "
                        f"{report.failed[clip]}"
                    )
            if self.in_flight_jobs:
                time.sleep(self.poll_s)
        return report

    def _submit(
        self, clip: Path, dest: Path, report: FolderReport, log: Callable[[str], None]
    ) -> None:
        try:
            job = self.client.stylize(
                clip, style=self.style, style_image=self.style_image, strength=self.strength
            )
        except InputRejected as exc:
            if exc.code in STYLE_CODES:
                raise
            report.failed[clip] = str(exc)
            log(f"{clip.name}: refused: {exc}")
            return
        self.in_flight_jobs[job.id] = (job, clip, dest)
        log(f"{clip.name}: job {job.id} queued")
