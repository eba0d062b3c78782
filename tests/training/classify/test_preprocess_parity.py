"""The tensor a clip becomes is the same in training's evaluation path and in the service."""

from pathlib import Path

import numpy as np
import pytest

from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input, sample_indices
from tests.utils.data import CLIPS, YOYO_CLIP
from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset
from training.classify.ucf101 import ClipRecord


@pytest.mark.parametrize("clip", [YOYO_CLIP, CLIPS / "kinetics_demo.mp4"], ids=lambda p: p.name)
def test_training_eval_input_equals_service_input(tmp_path: Path, clip: Path) -> None:
    spec = ClipSpec()
    record = ClipRecord(clip, "YoYo", "YoYo/g01", "video")
    dataset = ClipDataset([record], ["YoYo"], spec, ClipCache(tmp_path, spec.resize_short), False)
    training_input = dataset[0][0].numpy()

    frames, info = read_sampled_frames(clip, spec.frames, spec.resize_short, DecodeLimits())
    service_input = frames_to_input(frames, spec)[0]

    assert service_input.shape == (3, spec.frames, spec.crop, spec.crop)
    assert info.frames == len(ClipCache(tmp_path, spec.resize_short).frames(record))
    np.testing.assert_array_equal(training_input, service_input)


def test_sample_indices_spread_over_the_clip() -> None:
    assert sample_indices(80, 8) == [5, 15, 25, 35, 45, 55, 65, 75]
    assert sample_indices(3, 8) == [0, 0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        sample_indices(0, 8)


def test_clip_spec_round_trips_through_the_manifest() -> None:
    spec = ClipSpec(frames=16, crop=96)
    assert ClipSpec.from_manifest(spec.to_manifest()) == spec
