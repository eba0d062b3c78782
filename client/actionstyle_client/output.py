"""What the command line prints: result tables on stdout, a job's progress bar on stderr.

    print(classify_table(result, "clip.mp4"))
    print(classifier_table(client.classifiers.get("wave")))
    bar = ProgressBar("clip.mp4"); job.wait(progress=bar); bar.done()

Plain text only (no terminal library): on a terminal the bar redraws one line with `\\r`; in a
log or a pipe it prints a line at each state change and every 10 %.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from actionstyle_client.models import (
    ClassifierEntry,
    ClassifyResult,
    JobStatus,
    ModelsInfo,
    Prediction,
)

BAR_WIDTH = 28


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; numbers (cells starting with a digit) right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if c[:1].isdigit() else c.ljust(w)
            for c, w in zip(cells, widths, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _top(predictions: list[Prediction]) -> str:
    return f"{predictions[0].score:.3f}" if predictions else ""


def classify_table(result: ClassifyResult, name: str) -> str:
    video = result.video
    lines = [
        f"{name}: {result.top_label}"
        + ("" if result.confident else " (not confident: unlike any action the model knows)"),
        f"model {result.model}; {video.frames} frames, {video.duration_s:.1f} s, "
        f"{video.width}x{video.height}; {result.timings_ms.total:.0f} ms",
        "",
        table(["label", "score"], [[p.label, f"{p.score:.3f}"] for p in result.predictions]),
    ]
    if result.segments is not None:
        rows = [
            [f"{s.start_s:.1f}", f"{s.end_s:.1f}", s.top_label, _top(s.predictions)]
            + ["yes" if s.confident else "no"]
            for s in result.segments
        ]
        lines += ["", table(["start_s", "end_s", "label", "score", "confident"], rows)]
    return "\n".join(lines)


class ClassifyRows:
    """One line per clip as each answer comes, under a header: many clips in one table."""

    def __init__(self, names: list[str], labels_width: int = 16) -> None:
        self.widths = [max(len("clip"), *map(len, names)), labels_width, len("score")]
        self.header = self._line(["clip", "label", "score", "confident"])

    def _line(self, cells: list[str]) -> str:
        *padded, last = cells
        return "  ".join(c.ljust(w) for c, w in zip(padded, self.widths, strict=True)) + "  " + last

    def answer(self, name: str, result: ClassifyResult) -> str:
        best = result.predictions[0] if result.predictions else None
        label = result.top_label if result.confident or best is None else best.label
        score = f"{best.score:.3f}" if best else ""
        confident = "yes" if result.confident else "no: unlike any action the model knows"
        return self._line([name, label, score, confident])

    def refused(self, name: str, why: str) -> str:
        return f"{name.ljust(self.widths[0])}  refused: {why}"


def models_table(info: ModelsInfo) -> str:
    classifiers = [
        [
            c.name + (" (default)" if c.name == info.default_classifier else ""),
            c.family,
            str(len(c.labels)),
            "" if c.metrics.get("top1") is None else f"{c.metrics['top1']:.3f}",
        ]
        for c in info.classifiers
    ]
    styles = [[s.name, s.kind, s.display_name] for s in info.styles]
    custom = "yes" if info.custom_style else "no"
    return "\n".join(
        [
            table(["classifier", "family", "labels", "top1"], classifiers),
            "",
            table(["style", "kind", "display name"], styles),
            "",
            f"your own painting as style (--style-image): {custom}",
        ]
    )


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def classifier_table(entry: ClassifierEntry) -> str:
    """A taught classifier: its cross-validated accuracy, then each label's clips and accuracy."""
    counts, per_label = entry.clips_per_label, entry.per_label_top1
    summary = f"{entry.name}: {len(entry.labels)} labels"
    if counts:
        summary += f", taught from {sum(counts.values())} clips"
    if entry.cross_validated_top1 is not None:
        folds = f" ({entry.cv_folds} folds)" if entry.cv_folds else ""
        summary += f"; cross-validated accuracy {_percent(entry.cross_validated_top1)}{folds}"
    rows = [
        [label, str(counts.get(label, "")), _percent(per_label.get(label))]
        for label in entry.labels
    ]
    return "\n".join([summary, "", table(["label", "clips", "accuracy"], rows)])


def format_duration(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_s(status: JobStatus, now: datetime | None = None) -> float | None:
    """The server's estimate; else one from the progress so far; None before any progress."""
    if status.eta_s is not None:
        return status.eta_s
    if status.started_at is None or not 0 < status.progress < 1:
        return None
    elapsed = ((now or datetime.now(UTC)) - status.started_at).total_seconds()
    return elapsed * (1 - status.progress) / status.progress


def _bar(share: float) -> str:
    filled = round(share * BAR_WIDTH)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def progress_line(label: str, status: JobStatus) -> str:
    done, total, unit = status.frames_done, status.frames_total, "frames"
    if status.kind == "teach":  # it counts each clip, then one step for the training
        done, total, unit = min(done, total - 1), total - 1, "clips"
    frames = f"{done}/{total} {unit}" if total > 0 else ""
    eta = eta_s(status)
    left = f"ETA {format_duration(eta)}" if eta is not None and status.state == "running" else ""
    parts = [label, _bar(status.progress), f"{status.progress * 100:3.0f}%", frames, left]
    state = status.state.value
    if status.state == "queued" and status.workers_online == 0:
        state += " (no worker is running)"
    elif status.state == "queued" and status.queue_position:
        state += f" ({status.queue_position} ahead)"
    return "  ".join(part for part in [*parts, state] if part)


def upload_line(label: str, sent: int, total: int) -> str:
    share, mib = (sent / total if total else 1.0), 2**20
    amount = f"{sent / mib:.1f}/{total / mib:.1f} MiB"
    return f"{label}  {_bar(share)}  {share * 100:3.0f}%  {amount}  uploading"


class _StderrBar:
    """One line on stderr: redrawn in place on a terminal, else written again at each step."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown: object = None
        self._width = 0

    def _draw(self, line: str, step: object) -> None:
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            if step == self._shown:
                return
            self._shown = step
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


class ProgressBar(_StderrBar):
    """A `progress` callback for `Job.wait` that draws on stderr (off a terminal, a line for
    each tenth and each state)."""

    def __call__(self, status: JobStatus) -> None:
        line = progress_line(self.label, status)
        self._draw(line, (status.state.value, int(status.progress * 10)))


class UploadBar(_StderrBar):
    """An `on_upload` callback that draws how much of an upload has gone, on stderr (off a
    terminal, a line for each tenth)."""

    def __call__(self, sent: int, total: int) -> None:
        self._draw(upload_line(self.label, sent, total), int(sent * 10 / total) if total else 10)
