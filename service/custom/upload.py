"""Receive the training clips of POST /classifiers: several `files` (each with a `labels` value,
in the same order) or one ZIP `archive`, plus the `name`; all streamed to one temporary folder.

The body is never held in memory: each file part goes to its own file as it arrives, and the
limits (clip count, total bytes) are enforced while streaming, so a lying Content-Length changes
nothing. The folder is removed when the `async with` block ends, whatever happens inside.

    async with receive_training_upload(content_type, content_length, body, limits) as upload:
        clips = collect_clips(upload, limits)  # blocking (unpacks an archive): in a thread
        upload.name, clips                     # [UnpackedClip(label, path, shown), ...]
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.custom.archive import ArchiveLimits, InvalidTrainingSet, UnpackedClip, unpack_clips
from service.video.upload import (
    FieldTooLong,
    MalformedUpload,
    MissingUpload,
    UnsupportedVideo,
    UploadTooLarge,
    check_suffix,
    describe_size,
    feed_body,
    name_suffix,
    room_on_disk,
)

NAME_FIELD, LABELS_FIELD, FILES_FIELD, ARCHIVE_FIELD = "name", "labels", "files", "archive"
_TEXT_CAP = 256  # bytes of one form value (name, label)
_ENVELOPE_PER_PART = 1024  # boundaries and part headers


@dataclass(frozen=True)
class TrainingLimits:
    max_clips: int
    max_bytes: int  # the whole upload
    max_unpacked_bytes: int  # what an archive may inflate to
    temp_dir: Path | None = None

    def archive(self) -> ArchiveLimits:
        return ArchiveLimits(self.max_clips, self.max_unpacked_bytes)


@dataclass
class TrainingUpload:
    folder: Path
    name: str = ""
    labels: list[str] = field(default_factory=list)
    files: list[tuple[Path, str]] = field(default_factory=list)  # (where it is, its shown name)
    archive: Path | None = None


def _shown(filename: str) -> str:
    """A client's file name, as a short plain name for messages (never used as a path)."""
    return PurePosixPath(filename.replace("\\", "/")).name[:120] or "(no name)"


class _Receiver:
    """Feeds body chunks to python-multipart; files to the folder, form values in memory."""

    def __init__(self, boundary: bytes, limits: TrainingLimits, folder: Path) -> None:
        self.limits, self.folder = limits, folder
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )
        self._headers: dict[bytes, bytes] = {}
        self._hname = self._hvalue = b""
        self._text: tuple[str, bytearray] | None = None
        self._sink: BinaryIO | None = None
        self.names: list[str] = []
        self.labels: list[str] = []
        self.files: list[tuple[Path, str]] = []
        self.archive: Path | None = None
        self.size = 0
        self.open_parts = 0

    def _begin(self) -> None:
        self._headers = {}
        self.open_parts += 1

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if name in (NAME_FIELD, LABELS_FIELD) and filename is None:
            self._text = (name, bytearray())
        elif name == FILES_FIELD:
            shown = _shown((filename or b"").decode("utf-8", "replace"))
            if len(self.files) >= self.limits.max_clips:
                raise InvalidTrainingSet(
                    f"more than {self.limits.max_clips} clips were sent; that is the limit"
                )
            try:
                suffix = check_suffix(shown)
            except UnsupportedVideo as exc:
                if name_suffix(shown):  # the name says it is something else
                    raise UnsupportedVideo(f"the clip '{shown}': {exc}") from exc
                suffix = ""  # no extension: its content decides (submit.check_clips)
            path = self.folder / f"upload-{len(self.files):03d}{suffix}"
            self.files.append((path, shown))
            self._sink = open(path, "wb")  # noqa: SIM115 - closed at the part's end or on exit
        elif name == ARCHIVE_FIELD and self.archive is None:
            self.archive = self.folder / "archive.zip"
            self._sink = open(self.archive, "wb")  # noqa: SIM115

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._text is not None:
            name, buffer = self._text
            buffer += data[start:end]
            if len(buffer) > _TEXT_CAP:
                raise FieldTooLong(f"the field '{name}' is longer than {_TEXT_CAP} bytes")
        elif self._sink is not None:
            self.size += end - start
            if self.size > self.limits.max_bytes:
                raise UploadTooLarge(_too_large(self.limits))
            self._sink.write(memoryview(data)[start:end])

    def _end(self) -> None:
        self.open_parts -= 1
        if self._text is not None:
            name, buffer = self._text
            value = bytes(buffer).decode("utf-8", "replace").strip()
            (self.names if name == NAME_FIELD else self.labels).append(value)
            self._text = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as exc:
            raise MalformedUpload(f"the multipart body could not be read: {exc}") from exc

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def _too_large(limits: TrainingLimits) -> str:
    return (
        f"the training clips are larger than the limit of {describe_size(limits.max_bytes)} "
        "in all; send fewer or shorter clips"
    )


def _boundary(content_type: str | None) -> bytes:
    media_type, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise MissingUpload(
            "send the clips as multipart/form-data: a 'name', and 'files' with one 'labels' "
            "value each, or one ZIP 'archive' of <label>/<clip> folders"
        )
    return boundary


def collect_clips(upload: TrainingUpload, limits: TrainingLimits) -> list[UnpackedClip]:
    """Each clip with its label: the files as sent, or the archive unpacked into the folder."""
    receiver = upload
    if receiver.archive is not None and receiver.files:
        raise InvalidTrainingSet("send either 'files' with 'labels' or one 'archive', not both")
    if receiver.archive is not None:
        if receiver.labels:
            raise InvalidTrainingSet(
                "an archive's labels are its folder names: send no 'labels' with it"
            )
        with room_on_disk("the unpacked clips"):
            clips = unpack_clips(receiver.archive, upload.folder, limits.archive())
        receiver.archive.unlink()
        return clips
    if not receiver.files:
        raise MissingUpload(
            "the request holds no training clips: send 'files' with one 'labels' value each, "
            "or one ZIP 'archive' of <label>/<clip> folders"
        )
    if len(receiver.labels) != len(receiver.files):
        raise InvalidTrainingSet(
            f"{len(receiver.files)} files came with {len(receiver.labels)} labels; send one "
            "'labels' value per file, in the same order"
        )
    return [
        UnpackedClip(label, path, shown)
        for label, (path, shown) in zip(receiver.labels, receiver.files, strict=True)
    ]


@asynccontextmanager
async def receive_training_upload(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    limits: TrainingLimits,
) -> AsyncIterator[TrainingUpload]:
    """Stream the clips to a temporary folder (removed on exit) and say which label each has."""
    boundary = _boundary(content_type)
    cap = limits.max_bytes + (limits.max_clips + 8) * (_ENVELOPE_PER_PART + _TEXT_CAP)
    try:
        declared = int(content_length) if content_length is not None else None
    except ValueError:
        declared = None
    if declared is not None and declared > cap:
        raise UploadTooLarge(_too_large(limits))
    if limits.temp_dir is not None:
        limits.temp_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="teach-", dir=limits.temp_dir))
    receiver = _Receiver(boundary, limits, folder)
    try:
        with room_on_disk("the training clips"):
            await feed_body(body, cap, _too_large(limits), receiver.feed)
        receiver.parser.finalize()
        if receiver.open_parts:
            raise MalformedUpload("the upload ended before the multipart body was complete")
        receiver.close()
        yield TrainingUpload(
            folder,
            receiver.names[0] if receiver.names else "",
            receiver.labels,
            receiver.files,
            receiver.archive,
        )
    finally:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
