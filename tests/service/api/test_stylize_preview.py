"""POST /stylize/preview: one frame restyled at once, its size and time bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.utils.corpus import real_frames, write_hdr_video, write_video
from tests.utils.data import AUDIO_CLIP, CLIPS
from tests.utils.media import image_bytes
from tests.utils.processes import closed_port
from tests.utils.styles import TEST_STYLE

PAINTING = CLIPS.parent / "styles" / "reference" / "starry_night.jpg"


@pytest.fixture(scope="module")
def api(style_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API without Redis: previews never touch the job queue."""
    settings = Settings(
        models_dir=style_models_dir,
        temp_dir=tmp_path_factory.mktemp("uploads"),
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        ort_intra_op_threads=1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A real frame of a clip, enlarged to 960x720 (BGR)."""
    with av.open(str(AUDIO_CLIP)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="bgr24")
    return cv2.resize(first, (960, 720), interpolation=cv2.INTER_CUBIC)


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def preview(api: TestClient, image: bytes, **data: str) -> httpx.Response:
    files = {"image": ("frame.jpg", image)}
    if "style_image" in data:
        files["style_image"] = (PAINTING.name, Path(data.pop("style_image")).read_bytes())
    return api.post("/stylize/preview", files=files, data=data)


def decoded(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"
    return cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)


def test_a_named_style_at_each_strength(api: TestClient, frame: np.ndarray) -> None:
    full = decoded(preview(api, jpeg(frame), style=TEST_STYLE)).astype(np.float32)
    assert full.shape == (360, 480, 3)  # 480 px on the long side
    half = decoded(preview(api, jpeg(frame), style=TEST_STYLE, strength="0.5")).astype(np.float32)
    original = cv2.resize(frame, (480, 360), interpolation=cv2.INTER_AREA).astype(np.float32)
    style_distance = np.abs(full - original).mean()
    assert style_distance > 20  # the test network changes the picture a lot
    # Half-way between the original and the full style, up to JPEG noise.
    assert np.abs(half - (full + original) / 2).mean() < 0.1 * style_distance
    assert np.abs(half - original).mean() == pytest.approx(style_distance / 2, rel=0.15)


def test_a_small_picture_is_not_enlarged(api: TestClient) -> None:
    picture = decoded(preview(api, image_bytes(".png", 64, 48), style=TEST_STYLE, strength="1"))
    assert picture.shape == (48, 64, 3)


def test_your_own_painting_as_the_style(api: TestClient, frame: np.ndarray) -> None:
    response = preview(api, jpeg(frame), style_image=str(PAINTING), strength="0.8")
    assert decoded(response).shape == (360, 480, 3)


def test_previews_share_the_classifiers_arena(api: TestClient, frame: np.ndarray) -> None:
    # A style session's own onnxruntime arena would keep ~50 MiB in the API for good, for each
    # style a person previews; the arena the classifiers share grows only past their largest.
    assert preview(api, jpeg(frame), style=TEST_STYLE).status_code == 200
    session = api.app.state.style_engines.named(TEST_STYLE).network.session
    options = session.get_session_options()
    assert options.get_session_config_entry("session.use_env_allocators") == "1"


@pytest.mark.parametrize(
    ("data", "status", "code", "detail"),
    [
        (
            {"style": TEST_STYLE, "strength": "0"},
            422,
            "invalid_strength",
            "strength 0 would give back the video unchanged; send a number above 0 and at most 1",
        ),
        (
            {"style": TEST_STYLE, "strength": "2"},
            422,
            "invalid_strength",
            "strength must be a number above 0 and at most 1",
        ),
        ({"style": "nope"}, 422, "unknown_style", "unknown style 'nope'; known styles: "),
        ({}, 422, "invalid_style_choice", "send either the form field 'style'"),
    ],
    ids=["strength-0", "strength-2", "unknown-style", "no-style"],
)
def test_bad_choices_are_refused(
    api: TestClient, data: dict, status: int, code: str, detail: str
) -> None:
    response = preview(api, image_bytes(".jpg"), **data)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["detail"].startswith(detail)


def test_oversize_pictures_are_refused(api: TestClient) -> None:
    too_many_bytes = b"\xff\xd8\xff" + bytes(8 * 2**20)
    response = preview(api, too_many_bytes, style=TEST_STYLE)
    assert response.status_code == 413
    assert response.json() == {
        "detail": "the field 'image' is larger than the limit of 8 MiB",
        "code": "upload_too_large",
    }
    huge = cv2.imencode(".png", np.zeros((2200, 4200, 3), np.uint8))[1].tobytes()
    response = preview(api, huge, style=TEST_STYLE)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "the picture is 4200x2200; send one of at most 8,847,360 pixels "
        "(a 480 px frame is plenty for a preview)",
        "code": "invalid_preview_image",
    }


def test_what_is_not_a_picture_is_refused(api: TestClient) -> None:
    response = preview(api, b"not a picture", style=TEST_STYLE)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "the picture is not an image we can read; send a JPEG, PNG or WebP picture",
        "code": "invalid_preview_image",
    }
    response = api.post("/stylize/preview", files={"style": (None, TEST_STYLE)})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "the request has no multipart field 'image'",
        "code": "missing_file",
    }


def frame_of(api: TestClient, video: Path) -> httpx.Response:
    return api.post("/stylize/preview/frame", files={"file": (video.name, video.read_bytes())})


def test_a_frame_of_a_video_the_browser_cannot_decode(api: TestClient) -> None:
    picture = decoded(frame_of(api, AUDIO_CLIP))  # XviD AVI: no browser plays it
    assert picture.shape == (240, 320, 3)  # not enlarged
    with av.open(str(AUDIO_CLIP)) as container:
        frames = list(container.decode(video=0))
    one_second_in = next(f for f in frames if f.time - frames[0].time >= 1.0)
    truth = one_second_in.to_ndarray(format="bgr24").astype(int)
    assert np.abs(picture.astype(int) - truth).mean() < 3  # JPEG noise only


def test_a_phone_hdr_frame_comes_upright_and_in_its_colours(
    api: TestClient, tmp_path: Path
) -> None:
    pictures = real_frames(AUDIO_CLIP, 45, (640, 480))
    video = write_hdr_video(tmp_path / "iphone.mov", pictures, "hlg", rotation=90)
    picture = decoded(frame_of(api, video))
    assert picture.shape == (360, 480, 3)  # 640x480 as shown, 480 px on the long side
    truth = cv2.resize(pictures[30], (480, 360), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.abs(picture.astype(int) - truth).mean() < 5


def test_a_frame_of_a_video_titled_in_a_windows_code_page(api: TestClient, tmp_path: Path) -> None:
    pictures = real_frames(AUDIO_CLIP, 30, (96, 160))
    video = write_video(tmp_path / "old.mp4", pictures, title=b"\x85 Caf\xe9 clip")
    picture = decoded(frame_of(api, video))  # was a 500: PyAV refuses such a title by default
    truth = pictures[25][..., ::-1].astype(int)
    assert picture.shape == truth.shape and np.abs(picture.astype(int) - truth).mean() < 5


def test_a_frame_is_refused_as_a_video_would_be(api: TestClient, tmp_path: Path) -> None:
    text = tmp_path / "notes.avi"
    text.write_text("not a video\n" * 50)
    refused = frame_of(api, text)
    assert refused.status_code == 415 and refused.json()["code"] == "unsupported_media_type"
    one_frame = write_video(tmp_path / "one.mp4", real_frames(AUDIO_CLIP, 1, (64, 48)))
    assert decoded(frame_of(api, one_frame)).shape == (48, 64, 3)  # shorter than 1 s: its last
