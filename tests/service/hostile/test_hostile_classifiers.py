"""Hostile training sets for POST /classifiers: each gets its 4xx and a message naming what is
wrong, and leaves nothing behind (no spooled clip, no job, no file anywhere else)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.hostile.conftest import Sandbox, _sandbox
from tests.service.hostile.test_hostile_uploads import assert_nothing_kept
from tests.utils import hostile
from tests.utils.data import YOYO_CLIP
from tests.utils.teach import TRAINING_SET, training_form, training_zip, zip_bomb, zip_bytes

UNPACKED_LIMIT = 4 * 2**20


@pytest.fixture(scope="module")
def teach_sandbox(
    style_models_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The app with a low unpacked-size limit and a low total, so bombs stop in milliseconds."""
    root = tmp_path_factory.mktemp("hostile-teach")
    limits = {"teach_max_unpacked_bytes": UNPACKED_LIMIT, "teach_max_upload_bytes": 8 * 2**20}
    yield from _sandbox(root, style_models_dir, redis_url, **limits)


def _clips() -> dict[str, bytes]:
    return {f"{label}/{p.name}": p.read_bytes() for label, ps in TRAINING_SET.items() for p in ps}


ARCHIVES = {
    "parent path": (
        lambda: zip_bytes({**_clips(), "yoyo/../../escape.avi": b"RIFF"}),
        (
            422,
            "unsafe_archive",
            "the archive entry 'yoyo/../../escape.avi' points outside the archive ('..')",
        ),
    ),
    "absolute path": (
        lambda: zip_bytes({**_clips(), "/tmp/escape.avi": b"RIFF"}),
        (
            422,
            "unsafe_archive",
            "the archive entry '/tmp/escape.avi' has an absolute or Windows path",
        ),
    ),
    "symlink": (
        lambda: zip_bytes(_clips(), symlinks={"yoyo/link.avi": "/etc/passwd"}),
        (
            422,
            "unsafe_archive",
            "the archive entry 'yoyo/link.avi' is a symbolic link; send plain files",
        ),
    ),
    "zip bomb": (
        lambda: zip_bomb(64 * 2**20),
        (413, "archive_too_large", "the archive unpacks to 64 MiB, more than the limit of 4 MiB"),
    ),
    "undecodable clip": (
        lambda: zip_bytes({**_clips(), "yoyo/broken.avi": hostile.header_only(YOYO_CLIP)}),
        (
            422,
            "undecodable_video",
            "the clip 'yoyo/broken.avi' cannot be used: the file could not be opened as a video",
        ),
    ),
    "not a video inside": (
        lambda: zip_bytes({**_clips(), "yoyo/notes.txt": b"hello"}),
        (
            415,
            "unsupported_media_type",
            "the archive entry 'yoyo/notes.txt': '.txt' files are "
            "not accepted; upload an AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV video "
            "(.avi, .mp4, .m4v, .mov, .3gp, .3g2, .mpeg, .mpg, .vob, .mts, .m2ts, .ts, .wmv, "
            ".asf, .webm, .mkv)",
        ),
    ),
    "too deep": (
        lambda: zip_bytes({**_clips(), "yoyo/more/deep.avi": b"RIFF"}),
        (
            422,
            "invalid_training_set",
            "the archive entry 'yoyo/more/deep.avi' is not in a "
            "<label>/<clip> folder; put each label's clips in a folder named after the label",
        ),
    ),
    "damaged inside": (
        lambda: damaged_entry(zip_bytes(_clips()), "yoyo/"),
        (
            422,
            "unsafe_archive",
            "the archive entry 'yoyo/v_YoYo_g02_c01.avi' cannot be unpacked: Error -3 while "
            "decompressing data: invalid code lengths set",
        ),
    ),
    "not a zip": (
        lambda: YOYO_CLIP.read_bytes()[:5000],
        (
            422,
            "unsafe_archive",
            "the archive is not a ZIP file we can read: File is not a zip file",
        ),
    ),
    "one label": (
        lambda: training_zip({"yoyo": TRAINING_SET["yoyo"]}),
        (422, "invalid_training_set", "a classifier needs at least 2 labels; got 1 (yoyo)"),
    ),
}


@pytest.mark.parametrize("case", ARCHIVES.values(), ids=ARCHIVES.keys())
def test_hostile_archive_is_refused(teach_sandbox: Sandbox, case) -> None:
    build, (status, code, detail) = case
    response = teach_sandbox.client.post(
        "/classifiers", files={"archive": ("clips.zip", build())}, data={"name": "hostile"}
    )
    assert (response.status_code, response.json()) == (status, {"code": code, "detail": detail})
    assert_nothing_kept(teach_sandbox)


def damaged_entry(archive: bytes, prefix: str) -> bytes:
    """`archive` with the compressed data of its first entry under `prefix` overwritten, as a
    bad sector or a broken download leaves it (its headers intact)."""
    data = bytearray(archive)
    name_at = data.index(prefix.encode())  # the first local header's name; the data follows it
    start = data.index(b".avi", name_at) + len(b".avi")
    data[start + 2 : start + 6] = b"\xff\xff\xff\xff"
    return bytes(data)


def _form(clips: dict[str, list[Path]], name: str = "hostile", labels: list[str] | None = None):
    files, data = training_form(clips, name)
    if labels is not None:
        data["labels"] = labels
    return {"files": files, "data": data}


def _with_extra_clip(filename: str, content: bytes):
    form = _form(TRAINING_SET)
    form["files"].append(("files", (filename, content, "application/octet-stream")))
    form["data"]["labels"].append("yoyo")
    return form


FORMS = {
    "a label with one clip": (
        lambda: _form({"yoyo": TRAINING_SET["yoyo"], "punch": TRAINING_SET["punch"][:1]}),
        (422, "invalid_training_set", "each label needs at least 3 clips: 'punch' has 1"),
    ),
    "labels do not match the files": (
        lambda: _form(TRAINING_SET, labels=["yoyo"] * 5),
        (
            422,
            "invalid_training_set",
            "6 files came with 5 labels; send one 'labels' value per file, in the same order",
        ),
    ),
    "over-long name": (
        lambda: _form(TRAINING_SET, name="n" * 65),
        (422, "invalid_classifier_name", "the name is 65 characters long; at most 64 are allowed"),
    ),
    "name with a slash": (
        lambda: _form(TRAINING_SET, name="../x"),
        (
            422,
            "invalid_classifier_name",
            "'../x' is not a valid name: use letters, digits, _ "
            "and -, starting with a letter or digit",
        ),
    ),
    "a shipped model's name": (
        lambda: _form(TRAINING_SET, name="csn"),
        (409, "classifier_exists", "'csn' is the name of a shipped model; choose another name"),
    ),
    "a label that is a path": (
        lambda: _form(TRAINING_SET, labels=["../x"] * 3 + ["punch"] * 3),
        (
            422,
            "invalid_training_set",
            "'../x' (for 'v_YoYo_g02_c01.avi') is not a valid label: "
            "1 to 64 characters, no slashes, no control characters, no leading or trailing "
            "spaces",
        ),
    ),
    "a clip without an extension that is text": (
        lambda: _with_extra_clip("notes", b"not a video at all\n" * 50),
        (415, "unsupported_media_type", "the clip 'notes' is text, not a video"),
    ),
    "a clip whose name says another type": (
        lambda: _with_extra_clip("notes.txt", TRAINING_SET["yoyo"][0].read_bytes()),
        (
            415,
            "unsupported_media_type",
            "the clip 'notes.txt': '.txt' files are not accepted; upload an AVI, MP4, MOV, "
            "3GP, MPEG, MTS, WMV, WebM or MKV video (.avi, .mp4, .m4v, .mov, .3gp, .3g2, .mpeg, "
            ".mpg, .vob, .mts, .m2ts, .ts, .wmv, .asf, .webm, .mkv)",
        ),
    ),
    "no clips": (
        lambda: {"data": {"name": "hostile"}, "files": {"other": ("x.txt", b"x")}},
        (
            422,
            "missing_file",
            "the request holds no training clips: send 'files' with one "
            "'labels' value each, or one ZIP 'archive' of <label>/<clip> folders",
        ),
    ),
}


@pytest.mark.parametrize("case", FORMS.values(), ids=FORMS.keys())
def test_hostile_training_form_is_refused(teach_sandbox: Sandbox, case) -> None:
    build, (status, code, detail) = case
    response = teach_sandbox.client.post("/classifiers", **build())
    assert (response.status_code, response.json()) == (status, {"code": code, "detail": detail})
    assert_nothing_kept(teach_sandbox)


def test_streamed_past_the_limit_without_length(teach_sandbox: Sandbox) -> None:
    content_type, body = hostile.endless_multipart("files", "big.avi", total_bytes=12 * 2**20)
    response = teach_sandbox.client.post(
        "/classifiers", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 413
    assert response.json() == {
        "code": "upload_too_large",
        "detail": "the training clips are larger than the limit of 8 MiB in all; send fewer "
        "or shorter clips",
    }
    assert_nothing_kept(teach_sandbox)


def test_a_name_being_taught_is_refused_until_its_job_ends(teach_sandbox: Sandbox) -> None:
    client = teach_sandbox.client
    first = client.post("/classifiers", **_form(TRAINING_SET, name="twice"))
    assert first.status_code == 202  # queued: no worker reads this sandbox's queue
    second = client.post("/classifiers", **_form(TRAINING_SET, name="twice"))
    assert (second.status_code, second.json()) == (
        409,
        {
            "code": "classifier_exists",
            "detail": "a classifier named 'twice' is being taught; wait for it",
        },
    )
    assert client.delete(f"/jobs/{first.json()['job_id']}").status_code == 200
    assert_nothing_kept(teach_sandbox)  # a cancelled queued job keeps no clip
    third = client.post("/classifiers", **_form(TRAINING_SET, name="twice"))
    assert third.status_code == 202  # the cancelled job no longer holds the name
    assert client.delete(f"/jobs/{third.json()['job_id']}").status_code == 200
    assert_nothing_kept(teach_sandbox)


# A browser's Blob is named "blob", `requests` names bytes after their field, some clients send
# no name: like a video to /classify, such a clip is judged by its content.
def test_clips_without_an_extension_are_judged_by_their_content(teach_sandbox: Sandbox) -> None:
    form = _form(TRAINING_SET, name="unnamed")
    names = ["", "blob", "files", "3f9a1c0e", "", "clip"]
    form["files"] = [
        (field, (name, content, "application/octet-stream"))
        for (field, (_, content, _)), name in zip(form["files"], names, strict=True)
    ]
    response = teach_sandbox.client.post("/classifiers", **form)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    stored = sorted(p.name for p in (teach_sandbox.storage_dir / job_id).glob("clip-*"))
    assert stored == [f"clip-{i:03d}.avi" for i in range(6)]  # named for their container
    assert teach_sandbox.client.delete(f"/jobs/{job_id}").status_code == 200
    assert_nothing_kept(teach_sandbox)
