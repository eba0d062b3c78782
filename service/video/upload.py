"""Receive an uploaded video: stream one multipart field to a temporary file, within a size cap.

The body is read chunk by chunk and never held in memory whole; the size cap is enforced while
streaming, so a missing or lying Content-Length changes nothing. The file is accepted only when
its first bytes look like a video container and its name does not say otherwise (a video
extension, or none at all: what `requests`, a browser's Blob or a pipe send); it is removed when
the `async with` block ends, whatever happens inside. Framework-free: it takes the request's
headers and an async iterator of body chunks.

    async with receive_video_upload(content_type, content_length, body, limits) as video:
        classify(video.path, ...)

Small extra fields (a form value, a style image) can be kept too, in memory, each within its own
cap: `UploadLimits(..., extra_fields={"style": 200, "style_image": 20 * 2**20})`, then
`video.fields["style"].data`. A small body with no video at all (one picture and its form values)
is read with `receive_form_fields(..., {"image": 8 * 2**20, "strength": 32}, required="image")`.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NoReturn
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

# .3gp, .3g2: old phones (MP4's family); .vob: DVDs (MPEG-PS); .mts, .m2ts: AVCHD camcorders
# (MPEG-TS in 192-byte packets); .ts: MPEG-TS as TV recorders write it; .wmv, .asf: Windows Media.
VIDEO_SUFFIXES = (
    ".avi",
    ".mp4",
    ".m4v",
    ".mov",
    ".3gp",
    ".3g2",
    ".mpeg",
    ".mpg",
    ".vob",
    ".mts",
    ".m2ts",
    ".ts",
    ".wmv",
    ".asf",
    ".webm",
    ".mkv",
)
# Room for the multipart envelope (boundaries, part headers, small extra fields) around the file.
_ENVELOPE_BYTES = 64 * 1024
_SNIFF_BYTES = 512
_MP4_ATOMS = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
# MP4 files whose major brand says sound: iTunes and ffmpeg's ipod muxer write M4A songs, M4B
# audiobooks, M4P protected songs.
_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
# Common files that are not videos, recognised only to say what was sent instead.
_NOT_VIDEO = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"ID3", "MP3 audio"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "FLAC audio"),
)
_ACCEPTED = "upload an AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV video"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")  # the ASF header object's GUID
# Each container family we sniff: what to call it in a message, and the name to give it.
CONTAINERS = {
    "avi": ("an AVI video", ".avi"),
    "mp4": ("an MP4/MOV video", ".mp4"),
    "mpeg-ps": ("an MPEG video", ".mpg"),
    "mpeg-ts": ("an MPEG transport stream", ".ts"),
    "asf": ("a Windows Media (WMV) video", ".wmv"),
    "webm": ("a WebM video", ".webm"),
    "matroska": ("a Matroska (MKV) video", ".mkv"),
}


class UploadError(ValueError):
    """The upload cannot be used; the message says why, for a person to act on."""


class UploadTooLarge(UploadError):
    """The upload is bigger than the configured cap."""


class UnsupportedVideo(UploadError):
    """The file name or the content is not a video format we accept."""


class UploadStalled(UploadError):
    """The client stopped sending: no part of the body arrived within the idle limit."""


class StorageFull(UploadError):
    """The server's disk (or quota) has no room for what was sent; none of it is kept."""


class MissingUpload(UploadError):
    """The request carries no multipart field holding the file."""


class EmptyUpload(UploadError):
    """The file field is there but holds zero bytes."""


class MalformedUpload(UploadError):
    """The multipart body is broken or ends early."""


class FieldTooLong(UploadError):
    """A form value (not a file) is longer than its cap: an invalid value, not a large upload."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    temp_dir: Path | None = None
    field: str = "file"
    # Other fields to keep, in memory, by name -> their size cap in bytes; the rest are dropped.
    extra_fields: dict[str, int] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class FormField:
    """A small multipart field kept in memory: a form value, or a small file and its name."""

    data: bytes
    filename: str | None = None

    def text(self) -> str:
        return self.data.decode("utf-8", "replace").strip()


def field_text(field: FormField | None) -> str | None:
    """A form value as text; None when the field was not sent."""
    return field.text() if field is not None else None


@dataclass(frozen=True)
class ReceivedVideo:
    path: Path
    size: int
    container: str
    fields: dict[str, FormField] = dataclass_field(default_factory=dict)
    filename: str = ""  # as the client sent it; never used as a path


@contextmanager
def room_on_disk(what: str) -> Iterator[None]:
    """A full disk or quota while writing `what` becomes `StorageFull` (503: try later), not a
    server error; callers remove what they had written."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StorageFull(
            f"the server has no disk space left to keep {what}; try again in a few minutes, "
            "and tell its operator if this goes on"
        ) from exc


def describe_size(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


# A quote and line breaks in a form field's file name, as browsers and httpx escape them.
_HTML_FORM_ESCAPES = re.compile("%22|%0D|%0A", re.IGNORECASE)
# RFC 5987's `filename*=charset'language'percent-encoded` (RFC 7578 allows it in forms).
_EXTENDED_FILENAME = re.compile(r";\s*filename\*\s*=\s*([^;\s]+)", re.IGNORECASE)


def form_filename(disposition: bytes) -> str | None:
    """The file name a multipart part's Content-Disposition gives, as the client meant it;
    None when it gives none. The name is never used as a path."""
    extended = _EXTENDED_FILENAME.search(disposition.decode("latin-1"))
    if extended is not None:
        charset, _, encoded = email.utils.decode_rfc2231(extended.group(1).strip('"'))
        try:
            return unquote(encoded, encoding=charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return unquote(encoded, errors="replace")
    raw = parse_options_header(disposition)[1].get(b"filename")
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    return _HTML_FORM_ESCAPES.sub(lambda m: unquote(m.group()), text)


def name_suffix(filename: str) -> str:
    """The lower-cased extension of a client's file name, "" for none; never used as a path."""
    basename = PurePosixPath(filename.replace("\\", "/")).name
    return PurePosixPath(basename).suffix.lower()


def check_suffix(filename: str) -> str:
    """The lower-cased video extension of a client's file name; the name is never used as a path."""
    suffix = name_suffix(filename)
    if suffix in VIDEO_SUFFIXES:
        return suffix
    raise UnsupportedVideo(f"{_refused_names(suffix)}; {_ACCEPTED} ({', '.join(VIDEO_SUFFIXES)})")


def _refused_names(suffix: str) -> str:
    shown = f"'{suffix[:16]}' files are" if suffix else "files without an extension are"
    return f"{shown} not accepted"


def misnamed_video(filename: str, head: bytes) -> UnsupportedVideo | None:
    """The refusal of a video whose name says it is something else, naming what it really is."""
    container = sniff_container(head)
    if container is None:
        return None
    what, suffix = CONTAINERS[container]
    return UnsupportedVideo(
        f"{_refused_names(name_suffix(filename))}, but this file is {what}: "
        f"rename it to end in {suffix} and upload it again"
    )


def sniff_container(head: bytes) -> str | None:
    """The container family the first bytes of a file belong to, or None when no video matches."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_AUDIO_BRANDS:
        return None
    if head[4:8] in _MP4_ATOMS:
        return "mp4"
    if head.startswith(_ASF_HEADER):
        return "asf"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg-ps"
    if head.startswith(_EBML_MAGIC):
        # WebM is Matroska with a narrower codec list; the EBML header's DocType says which.
        return "webm" if b"webm" in head[:64] else "matroska" if b"matroska" in head[:64] else None
    # Transport streams are 188-byte packets, each starting with the 0x47 sync byte; AVCHD's
    # (.mts, .m2ts) put a 4-byte timestamp before each, 192 bytes in all.
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "mpeg-ts"
    if len(head) > 196 and head[4] == head[196] == 0x47:
        return "mpeg-ts"
    return None


def describe_content(head: bytes) -> str:
    """What a non-video file seems to be, for the refusal message; empty when unrecognised."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV audio"
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_AUDIO_BRANDS:
        return "M4A audio"
    for magic, what in _NOT_VIDEO:
        if head.startswith(magic):
            return what
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return "text"


def _boundary(content_type: str | None, field: str, what: str = "video") -> bytes:
    media_type, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise MissingUpload(
            f"send the {what} as multipart/form-data with the file in a field named '{field}'"
        )
    return boundary


def _declared_length(content_length: str | None) -> int | None:
    try:
        return int(content_length) if content_length is not None else None
    except ValueError:
        return None


class _FileFieldReceiver:
    """Feeds body chunks to python-multipart and writes the wanted field to a temporary file."""

    def __init__(self, boundary: bytes, limits: UploadLimits) -> None:
        self._limits = limits
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )
        self._headers: dict[bytes, bytes] = {}
        self._header_name = self._header_value = b""
        self._sink: BinaryIO | None = None
        self._head = bytearray()  # the file's first bytes, to sniff without reading it back
        self._writing = False
        # A file whose name is refused: its first bytes are still read, to say what it is.
        self._misnamed: tuple[str, UnsupportedVideo] | None = None
        self._extra: tuple[str, str | None, bytearray] | None = None
        self.extras: dict[str, FormField] = {}
        self.path: Path | None = None
        self.filename = ""
        self.size = 0
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise MalformedUpload(f"the multipart body could not be read: {exc}") from exc

    def finish(self) -> ReceivedVideo:
        self._parser.finalize()
        if self.path is None:
            raise MissingUpload(f"the request has no multipart field '{self._limits.field}'")
        if not self.complete:
            raise MalformedUpload("the upload ended before the multipart body was complete")
        if self.size == 0:
            raise EmptyUpload(f"the uploaded file is empty; {_ACCEPTED}")
        head = bytes(self._head)
        container = sniff_container(head)
        if container is None:
            what = describe_content(head)
            found = f"is {what}, not a video" if what else "matches no video format we accept"
            raise UnsupportedVideo(f"the file {found}; {_ACCEPTED}")
        if not self.path.suffix:
            # Sent without an extension: named for its container, as a job's stored input is.
            named = self.path.with_suffix(CONTAINERS[container][1])
            self.path.rename(named)
            self.path = named
        return ReceivedVideo(
            path=self.path,
            size=self.size,
            container=container,
            fields=dict(self.extras),
            filename=self.filename,
        )

    def finish_fields(self) -> None:
        """The end of a body read only for its small fields (no file field)."""
        self._parser.finalize()
        if self._extra is not None:
            raise MalformedUpload("the request ended before the multipart body was complete")

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
        if self.path is not None:
            with suppress(FileNotFoundError):
                self.path.unlink()

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        name = parse_options_header(disposition)[1].get(b"name", b"").decode("utf-8", "replace")
        if name in self._limits.extra_fields and name not in self.extras:
            self._extra = (name, form_filename(disposition), bytearray())
            return
        if not self._limits.field or name != self._limits.field or self.path is not None:
            return  # other fields, and repeats of ours, are read past and dropped
        filename = form_filename(disposition) or ""
        self.filename = filename
        try:
            suffix = check_suffix(filename)
        except UnsupportedVideo as refusal:
            if name_suffix(filename):  # the name says it is something else
                self._misnamed = (filename, refusal)
                return
            suffix = ""  # no extension: the content alone decides, in finish()
        if self._limits.temp_dir is not None:
            self._limits.temp_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=self._limits.temp_dir)
        self.path = Path(temp_name)
        self._sink = os.fdopen(fd, "wb")
        self._writing = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._extra is not None:
            name, _, buffer = self._extra
            buffer += data[start:end]
            cap = self._limits.extra_fields[name]
            if len(buffer) > cap:
                kind = UploadTooLarge if self._extra[1] is not None else FieldTooLong
                raise kind(f"the field '{name}' is larger than the limit of {describe_size(cap)}")
            return
        if self._misnamed is not None:
            self._head += data[start : start + _SNIFF_BYTES - len(self._head)]
            if len(self._head) >= _SNIFF_BYTES:
                self._refuse_misnamed(self._misnamed)
            return
        if not self._writing or self._sink is None:
            return
        self.size += end - start
        if self.size > self._limits.max_bytes:
            raise UploadTooLarge(_too_large(self._limits))
        piece = memoryview(data)[start:end]  # no copy of a chunk that can be 256 KiB
        if len(self._head) < _SNIFF_BYTES:
            self._head += piece[: _SNIFF_BYTES - len(self._head)]
        # A plain blocking write: chunks are small and local disks fast, so a thread hop per
        # chunk would cost more than it saves.
        self._sink.write(piece)

    def _refuse_misnamed(self, misnamed: tuple[str, UnsupportedVideo]) -> NoReturn:
        filename, refusal = misnamed
        raise misnamed_video(filename, bytes(self._head)) or refusal

    def _on_part_end(self) -> None:
        if self._misnamed is not None:
            self._refuse_misnamed(self._misnamed)
        if self._extra is not None:
            name, filename, buffer = self._extra
            self.extras[name] = FormField(bytes(buffer), filename)
            self._extra = None
            return
        if self._writing and self._sink is not None:
            self._sink.close()
            self._writing = False
            self.complete = True


def _too_large(limits: UploadLimits) -> str:
    return (
        f"the upload is larger than the limit of {describe_size(limits.max_bytes)}; "
        "send a shorter or more compressed video"
    )


async def idle_limited(body: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[bytes]:
    """The body's chunks; `UploadStalled` when the next one takes longer than `idle_s` to come,
    so that a client that stops sending (a dropped connection, a slowloris) holds neither the
    request nor its spooled file for ever. Slow but steady uploads are not cut off."""
    chunks = aiter(body)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadStalled(
                f"no data arrived for {idle_s:g} s, so the upload was dropped; check the "
                "connection and send the file again"
            ) from None
        yield chunk


async def feed_body(
    body: AsyncIterator[bytes], cap: int, too_large: str, feed: Callable[[bytes], None]
) -> None:
    """Hand every chunk of the body to `feed`; `UploadTooLarge(too_large)` past `cap` bytes,
    whatever the request's Content-Length said."""
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > cap:
            raise UploadTooLarge(too_large)
        feed(chunk)


@asynccontextmanager
async def receive_video_upload(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    limits: UploadLimits,
) -> AsyncIterator[ReceivedVideo]:
    """Stream the multipart field `limits.field` to a temporary file; it is removed on exit."""
    boundary = _boundary(content_type, limits.field)
    envelope_cap = limits.max_bytes + _ENVELOPE_BYTES + sum(limits.extra_fields.values())
    declared = _declared_length(content_length)
    if declared is not None and declared > envelope_cap:
        raise UploadTooLarge(_too_large(limits))
    receiver = _FileFieldReceiver(boundary, limits)
    try:
        with room_on_disk("the upload"):
            await feed_body(body, envelope_cap, _too_large(limits), receiver.feed)
            video = receiver.finish()
        yield video
    finally:
        receiver.close()


async def receive_form_fields(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    fields: dict[str, int],
    required: str,
) -> dict[str, FormField]:
    """Read a small multipart body with no video: only `fields`, each in memory within its cap
    (`UploadTooLarge` for a file over it, `FieldTooLong` for a form value); `required` must be
    there and not empty."""
    boundary = _boundary(content_type, required, what="image")
    envelope_cap = _ENVELOPE_BYTES + sum(fields.values())
    too_large = f"the request is larger than the limit of {describe_size(envelope_cap)}"
    declared = _declared_length(content_length)
    if declared is not None and declared > envelope_cap:
        raise UploadTooLarge(too_large)
    limits = UploadLimits(max_bytes=0, field="", extra_fields=fields)  # no file field
    receiver = _FileFieldReceiver(boundary, limits)
    await feed_body(body, envelope_cap, too_large, receiver.feed)
    receiver.finish_fields()
    if required not in receiver.extras:
        raise MissingUpload(f"the request has no multipart field '{required}'")
    if not receiver.extras[required].data:
        raise EmptyUpload(f"the field '{required}' is empty")
    return receiver.extras
