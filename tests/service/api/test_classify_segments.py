"""POST /classify?segments=true and the open-set verdict, with the real default model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.inference.classifier import segment_bounds
from tests.utils.data import CLIPS, UNSEEN_ACTIONS, YOYO_CLIP


def classify(client: TestClient, path, query: str = "") -> dict:
    with open(path, "rb") as f:
        response = client.post(f"/classify{query}", files={"file": (path.name, f, "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()


def test_segments_cover_a_ten_second_video_in_two_second_windows(client: TestClient) -> None:
    body = classify(client, CLIPS / "kinetics_demo.mp4", "?segments=true&window_s=2&top_k=2")
    segments = body["segments"]
    assert [(s["start_s"], s["end_s"]) for s in segments] == [
        (0.0, 2.0),
        (2.0, 4.0),
        (4.0, 6.0),
        (6.0, 8.0),
        (8.0, 10.0),
    ]
    for segment in segments:
        assert len(segment["predictions"]) == 2
        assert isinstance(segment["confident"], bool)
        assert segment["top_label"] in {segment["predictions"][0]["label"], "unknown"}
    # the overall answer is the same as without segments
    plain = classify(client, CLIPS / "kinetics_demo.mp4", "?top_k=2")
    # decoded with the segments, the whole clip gets the same scores to float precision
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in plain["predictions"]]
    for batched, alone in zip(body["predictions"], plain["predictions"], strict=True):
        assert batched["score"] == pytest.approx(alone["score"], abs=1e-5)
    assert plain["segments"] is None


def test_segment_window_is_validated(client: TestClient) -> None:
    with open(YOYO_CLIP, "rb") as f:
        response = client.post(
            "/classify?segments=true&window_s=0", files={"file": (YOYO_CLIP.name, f, "video/avi")}
        )
    assert response.status_code == 422
    assert "window_s" in response.json()["detail"]


def test_segment_bounds_merge_a_short_tail() -> None:
    assert segment_bounds(250, 25.0, 2.0) == [
        (0, 50),
        (50, 100),
        (100, 150),
        (150, 200),
        (200, 250),
    ]
    assert segment_bounds(110, 25.0, 2.0) == [(0, 50), (50, 110)]
    assert segment_bounds(130, 25.0, 2.0) == [(0, 50), (50, 100), (100, 130)]
    assert segment_bounds(10, 0.0, 1.0) == [(0, 10)]  # unknown fps: 25 assumed


def test_known_action_is_confident(client: TestClient) -> None:
    body = classify(client, YOYO_CLIP)
    assert body["confident"] is True
    assert body["top_label"] == body["predictions"][0]["label"] == "YoYo"


def test_unseen_actions_are_flagged_as_export_measured(client: TestClient) -> None:
    verdicts = {name: classify(client, CLIPS / name) for name in UNSEEN_ACTIONS}
    flagged = [name for name, body in verdicts.items() if not body["confident"]]
    # Served through HTTP, the default model flags exactly what its export measured on these
    # clips (the target, 80 %, is tracked in docs/models.md; the model falls short of it).
    default = client.get("/models").json()["default_classifier"]
    entry = next(c for c in client.get("/models").json()["classifiers"] if c["name"] == default)
    open_set = entry["open_set"]
    assert open_set["unseen_action_clips"] == len(UNSEEN_ACTIONS)
    expected = round(open_set["unseen_actions_flagged"] * len(UNSEEN_ACTIONS))
    assert len(flagged) == expected >= 1, {
        name: (body["top_label"], body["ood_distance"]) for name, body in verdicts.items()
    }
    for name in flagged:
        assert verdicts[name]["top_label"] == "unknown"


def test_a_window_needing_more_decoded_memory_than_allowed_is_refused(make_settings) -> None:
    from service.app import create_app

    video = (CLIPS / "kinetics_demo.mp4").read_bytes()
    # 10 s at 340x256: windows of 2 s need 48 frames of ~200 KB each at 224 px, over 4 MB.
    with TestClient(create_app(make_settings(max_decoded_mb=4))) as small:
        refused = small.post(
            "/classify?segments=true&window_s=2", files={"file": ("kinetics_demo.mp4", video)}
        )
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["code"] == "too_many_segments" and "MB one request may hold" in body["detail"]
        # The whole-clip answer needs only its 8 frames: still served.
        whole = small.post("/classify", files={"file": ("kinetics_demo.mp4", video)})
        assert whole.status_code == 200, whole.text
