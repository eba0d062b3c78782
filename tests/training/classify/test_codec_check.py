"""Held-out clips re-encoded in another codec: same frames, other compression."""

from pathlib import Path

import av
import numpy as np
import pytest

from tests.utils.data import SHARED_DATA
from training.classify.codec_check import TRANSCODES, serving_input, transcode
from training.classify.models.registry import get_family
from training.classify.ucf101 import discover_clips


@pytest.fixture(scope="module")
def records():
    clips = discover_clips(SHARED_DATA, ["Archery", "Punch", "ApplyEyeMakeup"])
    return {
        label: next(c for c in clips if c.label == label)
        for label in ("Archery", "Punch", "ApplyEyeMakeup")
    }


def _stream(path: Path) -> tuple[str, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in container.decode(stream))


@pytest.mark.parametrize("target", TRANSCODES, ids=lambda t: t.name)
def test_each_layout_is_reencoded_frame_for_frame(records, target, tmp_path: Path) -> None:
    expected_codec = {"mpeg4": "mpeg4", "libx264": "h264", "mjpeg": "mjpeg"}[target.codec]
    for label, record in records.items():
        path = transcode(record, target, tmp_path)
        assert path.suffix == target.suffix and label in path.name
        codec, frames = _stream(path)
        assert codec == expected_codec
        if record.kind == "frames":
            assert frames == len(list(record.path.glob("*.jpg")))
        else:
            assert frames == _stream(record.path)[1]
        assert transcode(record, target, tmp_path) == path  # kept, not encoded again


def test_reencoded_input_is_close_to_the_stored_one(records, tmp_path: Path) -> None:
    spec = get_family("r2plus1d").clip_spec
    for record in records.values():
        stored = serving_input(record, spec)
        reencoded = serving_input(transcode(record, TRANSCODES[0], tmp_path), spec)
        assert stored.shape == reencoded.shape == (1, 3, spec.frames, spec.crop, spec.crop)
        # same frames, other compression: close, never identical
        assert 0 < np.abs(stored - reencoded).mean() < 0.25
