"""The clips of a teach job, as the command line names them: folders and `LABEL=PATH` pairs.

    clips = clips_from_folder(Path("clips"))         # clips/<label>/<clip> -> {label: [clip, ...]}
    add_clips(clips, clips_from_pairs(["wave=a.mp4", "wave=more/", "other=b.avi"]))

Only paths are gathered here: the files stay on disk until the upload streams them. Whether
there are enough labels and clips is the server's to say (its message names what is missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from actionstyle_client.batch import VIDEO_SUFFIXES

Clips = dict[str, list[Path]]


def videos_in(folder: Path) -> list[Path]:
    """The videos directly in `folder`, by name; hidden files and other files are left alone."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_SUFFIXES
    )


def clips_from_folder(folder: Path) -> Clips:
    """Each sub-folder of `folder` is a label and its videos are that label's clips."""
    if not folder.exists():
        raise FileNotFoundError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of <label>/<clip> folders (nor a .zip)")
    clips: Clips = {}
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and (found := videos_in(sub)):
            clips[sub.name] = found
    if not clips:
        raise ValueError(f"{folder} holds no <label>/<clip> folders with videos in them")
    return clips


def clips_from_pairs(pairs: Iterable[str]) -> Clips:
    """`LABEL=PATH` pairs; a PATH that is a folder stands for every video in it."""
    clips: Clips = {}
    for pair in pairs:
        label, equals, path = pair.partition("=")
        if not (equals and label and path):
            raise ValueError(f"--clips takes LABEL=PATH (a clip or a folder), not {pair!r}")
        where = Path(path)
        if where.is_dir():
            found = videos_in(where)
            if not found:
                raise ValueError(f"the folder {where} (for '{label}') holds no videos")
        elif where.is_file():
            found = [where]
        else:
            raise FileNotFoundError(f"no such file or folder: {where}")
        clips.setdefault(label, []).extend(found)
    return clips


def add_clips(clips: Clips, more: Clips) -> Clips:
    """`more` added to `clips` (in place), label by label; returns `clips`."""
    for label, paths in more.items():
        clips.setdefault(label, []).extend(paths)
    return clips
