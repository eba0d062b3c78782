"""Unpack a ZIP of training clips (`<label>/<clip>`) without trusting anything in it.

Every entry name is checked before anything is written (no absolute paths, no `..`, no
backslashes, no symlinks, no nesting beyond one optional top folder); nothing is ever written
under an entry's own name (clips become `clip-NNN.<ext>` in the target folder); and unpacking
is bounded by bytes actually inflated, not by the sizes the archive claims, so a ZIP bomb stops
at the limit.

    clips = unpack_clips(Path("upload.zip"), folder, ArchiveLimits(max_clips=200, ...))
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from service.video.upload import UnsupportedVideo, UploadError, check_suffix, describe_size

_CHUNK = 1 << 20
_JUNK_FOLDERS = {"__MACOSX"}
# What Windows' Explorer leaves in folders of videos (macOS's leave a dot or __MACOSX).
_JUNK_FILES = {"thumbs.db", "ehthumbs.db", "desktop.ini"}


class UnsafeArchive(UploadError):
    """An entry would land outside its folder, is a link, or is not a ZIP we can read safely."""


class ArchiveTooLarge(UploadError):
    """The archive unpacks to more bytes than allowed (a ZIP bomb, or simply too much)."""


class InvalidTrainingSet(UploadError):
    """The clips and labels cannot teach a classifier: too few, too many, or mismatched."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_clips: int
    max_unpacked_bytes: int


@dataclass(frozen=True)
class UnpackedClip:
    label: str
    path: Path
    shown: str  # the entry's name in the archive, for messages


def _parts(info: zipfile.ZipInfo) -> list[str] | None:
    """The entry's path parts once checked; None for folders and junk (macOS, Windows,
    hidden files)."""
    name = info.filename
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise UnsafeArchive(f"the archive entry '{name}' is a symbolic link; send plain files")
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"the archive entry '{name}' has an absolute or Windows path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"the archive entry '{name}' points outside the archive ('..')")
    if info.is_dir() or not parts or parts[0] in _JUNK_FOLDERS:
        return None
    if any(part.startswith(".") for part in parts) or parts[-1].lower() in _JUNK_FILES:
        return None
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"the archive entry '{name}' is encrypted; send it unencrypted")
    return parts


def _layout(entries: list[tuple[zipfile.ZipInfo, list[str]]]) -> list[tuple[str, str]]:
    """(label, file name) of each entry: `<label>/<clip>`, under at most one common top folder."""
    tops = {parts[0] for _, parts in entries}
    strip = len(tops) == 1 and all(len(parts) == 3 for _, parts in entries)
    found = []
    for info, parts in entries:
        kept = parts[1:] if strip else parts
        if len(kept) != 2:
            raise InvalidTrainingSet(
                f"the archive entry '{info.filename}' is not in a <label>/<clip> folder; "
                "put each label's clips in a folder named after the label"
            )
        found.append((kept[0], kept[1]))
    return found


def _copy_bounded(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int
) -> int:
    """Inflate one entry into `target`; stops past `budget` bytes, whatever the header says."""
    written = 0
    with archive.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ArchiveTooLarge(
                    f"the archive unpacks to more than the limit; '{info.filename}' alone "
                    f"inflates past {describe_size(budget)}"
                )
            sink.write(chunk)
    return written


def unpack_clips(archive_path: Path, folder: Path, limits: ArchiveLimits) -> list[UnpackedClip]:
    """Check every entry, then inflate the clips into `folder` as clip-NNN.<ext>."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"the archive is not a ZIP file we can read: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > 4 * limits.max_clips + 64:
            raise InvalidTrainingSet(
                f"the archive holds {len(infos)} entries; send at most {limits.max_clips} clips"
            )
        entries = [(info, parts) for info in infos if (parts := _parts(info)) is not None]
        if len(entries) > limits.max_clips:
            raise InvalidTrainingSet(
                f"the archive holds {len(entries)} files; at most {limits.max_clips} clips "
                "are allowed"
            )
        placed = _layout(entries)
        for (info, _), (_, filename) in zip(entries, placed, strict=True):
            try:
                check_suffix(filename)
            except UnsupportedVideo as exc:
                raise UnsupportedVideo(f"the archive entry '{info.filename}': {exc}") from exc
        declared = sum(info.file_size for info, _ in entries)
        if declared > limits.max_unpacked_bytes:
            raise ArchiveTooLarge(
                f"the archive unpacks to {describe_size(declared)}, more than the limit of "
                f"{describe_size(limits.max_unpacked_bytes)}"
            )
        clips, budget = [], limits.max_unpacked_bytes
        for i, ((info, _), (label, filename)) in enumerate(zip(entries, placed, strict=True)):
            target = folder / f"clip-{i:03d}{check_suffix(filename)}"
            try:
                budget -= _copy_bounded(archive, info, target, budget)
            except ArchiveTooLarge:
                raise
            # zlib.error: the deflate stream itself is damaged (a CRC is checked only at its end)
            except (
                zipfile.BadZipFile,
                zlib.error,
                NotImplementedError,
                EOFError,
                ValueError,
            ) as exc:
                raise UnsafeArchive(
                    f"the archive entry '{info.filename}' cannot be unpacked: {exc}"
                ) from exc
            clips.append(UnpackedClip(label, target, str(PurePosixPath(*info.filename.split("/")))))
        return clips
