"""The held-out style check draws from every class's test groups and bootstraps honestly."""

from __future__ import annotations

import numpy as np

from tests.utils.data import SHARED_DATA
from training.classify.ucf101 import discover_clips, split_by_group
from training.styles.heldout import _cut_floor, heldout_clips


def test_heldout_clips_come_from_the_test_groups_of_every_class() -> None:
    clips = heldout_clips(SHARED_DATA, clips_per_class=8)
    test_names = {c.name for c in split_by_group(discover_clips(SHARED_DATA)).test}
    labels = {c.label for c in clips}
    assert len(labels) == 9 and len(clips) >= 60
    assert {c.name for c in clips} <= test_names


def test_the_cut_floor_sits_below_the_cut_and_falls_when_outputs_are_mixed() -> None:
    rng = np.random.default_rng(0)
    paintings = rng.normal(1.0, 1.0, (60, 16))
    raw = rng.normal(0.0, 1.0, (80, 16))
    styled = rng.normal(0.9, 1.0, (80, 16))  # most of the way to the paintings
    half = np.concatenate([styled[:40], raw[40:]])  # only half the frames painted
    floor = _cut_floor(styled, raw, paintings, rounds=50, seed=0)
    assert 50.0 < floor < 100.0
    assert _cut_floor(half, raw, paintings, rounds=50, seed=0) < floor
