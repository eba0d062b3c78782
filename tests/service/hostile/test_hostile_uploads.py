"""The corpus of hostile requests: every one gets its 4xx and a message, never a 5xx.

Each bad upload is sent to both POST /classify and POST /stylize. After each, the spool folder is
empty, no job was stored, and nothing was written anywhere else.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service.hostile.conftest import Sandbox
from tests.utils import hostile
from tests.utils.data import YOYO_CLIP
from tests.utils.media import image_bytes, mjpg_avi_bytes, random_bytes, wav_bytes
from tests.utils.styles import TEST_STYLE

ACCEPTED = "upload an AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV video"
SUFFIXES = (
    "(.avi, .mp4, .m4v, .mov, .3gp, .3g2, .mpeg, .mpg, .vob, .mts, .m2ts, .ts, .wmv, .asf, "
    ".webm, .mkv)"
)
UNOPENABLE = (422, "undecodable_video", "the file could not be opened as a video")
NO_VIDEO = (422, "undecodable_video", "the file holds sound but no video; upload a video file")
COVER_ART_ONLY = (
    422,
    "undecodable_video",
    "the file holds sound and a still picture (cover art) but no video; upload a video file",
)
ONE_FRAME = (422, "video_too_short", "the video has 1 decodable frame(s); at least 2 are needed")
ENDPOINTS = ("/classify", "/stylize")


@dataclass(frozen=True)
class Hostile:
    filename: str
    content: Callable[[], bytes]
    status: int
    code: str
    detail: str


def _case(filename: str, content: Callable[[], bytes], expected: tuple[int, str, str]) -> Hostile:
    return Hostile(filename, content, *expected)


def _not_video(what: str) -> tuple[int, str, str]:
    return 415, "unsupported_media_type", f"the file is {what}, not a video; {ACCEPTED}"


CORPUS = {
    "empty": _case(
        "clip.avi", lambda: b"", (422, "empty_file", f"the uploaded file is empty; {ACCEPTED}")
    ),
    "text": _case("notes.mp4", lambda: b"just some words\n" * 50, _not_video("text")),
    "random bytes": _case(
        "noise.mov",
        lambda: random_bytes(64 * 1024),
        (415, "unsupported_media_type", f"the file matches no video format we accept; {ACCEPTED}"),
    ),
    "truncated avi": _case(YOYO_CLIP.name, lambda: hostile.truncated(YOYO_CLIP), ONE_FRAME),
    "bit-flipped headers": _case(
        YOYO_CLIP.name, lambda: hostile.bit_flipped(YOYO_CLIP), UNOPENABLE
    ),
    "header only": _case(YOYO_CLIP.name, lambda: hostile.header_only(YOYO_CLIP), UNOPENABLE),
    "mp4 cut before its moov index": _case(
        "clip.mp4", lambda: hostile.mp4_cut_before_index(YOYO_CLIP), UNOPENABLE
    ),
    "zip named .mov": _case(
        "clip.mov", lambda: hostile.zip_of(YOYO_CLIP), _not_video("a ZIP archive")
    ),
    "jpeg named .avi": _case("photo.avi", lambda: image_bytes(".jpg"), _not_video("a JPEG image")),
    "png named .mp4": _case("photo.mp4", lambda: image_bytes(".png"), _not_video("a PNG image")),
    "wav audio named .avi": _case("song.avi", wav_bytes, _not_video("WAV audio")),
    # Music and podcasts come as MP4 too: an M4A says so in its header; an MP4 of sound, with or
    # without its cover art (a one-frame picture stream), is found out when it is opened.
    "audio-only mp4": _case("song.mp4", hostile.audio_only_mp4, NO_VIDEO),
    "audio and cover art in an mp4": _case(
        "song.mp4", lambda: hostile.audio_only_mp4(cover_art=True), COVER_ART_ONLY
    ),
    "m4a named .mp4": _case(
        "song.mp4", lambda: hostile.audio_only_mp4(muxer="ipod"), _not_video("M4A audio")
    ),
    "one frame": _case("still.avi", lambda: mjpg_avi_bytes(64, 48, 1), ONE_FRAME),
    "16x16 pixels": _case(
        "tiny.avi",
        hostile.tiny_video,
        (
            422,
            "video_limit_exceeded",
            "frames of 16x16 are smaller than the minimum of 32 pixels a side; send a larger video",
        ),
    ),
    "a 20:1 strip": _case(
        "strip.avi",
        lambda: mjpg_avi_bytes(640, 32, 10),
        (
            422,
            "video_limit_exceeded",
            "frames of 640x32 are 20 times wider than tall, beyond the limit of 16; "
            "crop the video to a less extreme shape and try again",
        ),
    ),
    "a 1:20 strip": _case(
        "strip.avi",
        lambda: mjpg_avi_bytes(32, 640, 10),
        (
            422,
            "video_limit_exceeded",
            "frames of 32x640 are 20 times taller than wide, beyond the limit of 16; "
            "crop the video to a less extreme shape and try again",
        ),
    ),
    "8K frames": _case(
        "8k.avi",
        hostile.eight_k_video,
        (
            422,
            "video_limit_exceeded",
            "the video is 7680x4320 at 25 fps, 829 million pixels a second to decode, more "
            "than the limit of 531 million; lower its resolution or frame rate and try again",
        ),
    ),
    "video named .exe": _case(
        "clip.exe",
        YOYO_CLIP.read_bytes,
        (
            415,
            "unsupported_media_type",
            "'.exe' files are not accepted, but this file is an AVI video: "
            "rename it to end in .avi and upload it again",
        ),
    ),
    "path traversal name, garbage inside": _case(
        "../../../../tmp/actionstyle-escape.avi",
        lambda: random_bytes(4096),
        (415, "unsupported_media_type", f"the file matches no video format we accept; {ACCEPTED}"),
    ),
    "unicode name, wrong extension": _case(
        "видео 🎬.avi.ｍｐ４",
        YOYO_CLIP.read_bytes,
        (
            415,
            "unsupported_media_type",
            "'.ｍｐ４' files are not accepted, but this file is an AVI video: "
            "rename it to end in .avi and upload it again",
        ),
    ),
}


def _fields(endpoint: str) -> dict[str, str]:
    return {"style": TEST_STYLE} if endpoint == "/stylize" else {}


def assert_nothing_kept(sandbox: Sandbox) -> None:
    assert list(sandbox.temp_dir.glob("*")) == []
    assert list(sandbox.storage_dir.glob("*")) == []
    assert sandbox.files() == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", CORPUS.values(), ids=CORPUS.keys())
def test_hostile_upload_is_refused(sandbox: Sandbox, endpoint: str, case: Hostile) -> None:
    response = sandbox.client.post(
        endpoint, files={"file": (case.filename, case.content())}, data=_fields(endpoint)
    )
    assert (response.status_code, response.json()) == (
        case.status,
        {"code": case.code, "detail": case.detail},
    )
    assert_nothing_kept(sandbox)
    assert not Path(tempfile.gettempdir(), "actionstyle-escape.avi").exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_video_longer_than_the_limit(strict_sandbox: Sandbox, endpoint: str) -> None:
    with YOYO_CLIP.open("rb") as clip:
        response = strict_sandbox.client.post(
            endpoint, files={"file": (YOYO_CLIP.name, clip)}, data=_fields(endpoint)
        )
    assert response.status_code == 422
    assert response.json() == {
        "code": "video_limit_exceeded",
        "detail": "the video lasts 7 s, longer than the limit of 2 s; cut it shorter and try again",
    }
    assert_nothing_kept(strict_sandbox)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_streamed_past_the_limit_without_length(strict_sandbox: Sandbox, endpoint: str) -> None:
    content_type, body = hostile.endless_multipart("file", "big.avi", total_bytes=8 * 2**20)
    response = strict_sandbox.client.post(
        endpoint, content=body, headers={"content-type": content_type}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {
        "code": "upload_too_large",
        "detail": "the upload is larger than the limit of 1 MiB; "
        "send a shorter or more compressed video",
    }
    assert_nothing_kept(strict_sandbox)


def test_streamed_past_the_real_default_of_200_mib(sandbox: Sandbox) -> None:
    """The shipped limit holds against a chunked body that never says how long it is."""
    content_type, body = hostile.endless_multipart("file", "big.avi", total_bytes=210 * 2**20)
    started = time.monotonic()
    response = sandbox.client.post(
        "/classify", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 413
    assert response.json() == {
        "code": "upload_too_large",
        "detail": "the upload is larger than the limit of 200 MiB; "
        "send a shorter or more compressed video",
    }
    assert time.monotonic() - started < 60
    assert_nothing_kept(sandbox)
