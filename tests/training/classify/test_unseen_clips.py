"""Unseen actions from other sources: the exported model, run as the service runs it, flags them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.utils.data import CLIPS, REPO_ROOT, UNSEEN_ACTIONS
from training.classify.export import unseen_action_paths
from training.classify.unseen_clips import (
    best_trade_offs,
    check_unseen,
    download_package,
    packaged_clip_paths,
)

MODELS = REPO_ROOT / "exported_models"


def test_the_check_flags_what_export_measured_on_the_same_clips(tmp_path: Path) -> None:
    # The check runs the ONNX on the serving decode; export ran torch on the training decode.
    # On the clips export measured, both must flag the same number.
    manifest = json.loads((MODELS / "manifest.json").read_text())
    name = manifest["default_classifier"]
    (entry,) = [c for c in manifest["classifiers"] if c["name"] == name]
    shutil.copy(MODELS / "manifest.json", tmp_path / "manifest.json")
    (tmp_path / entry["file"]).symlink_to(MODELS / entry["file"])

    result = check_unseen(tmp_path, [name], [CLIPS / clip for clip in UNSEEN_ACTIONS])[name]

    open_set = entry["open_set"]
    assert open_set["unseen_action_clips"] == len(UNSEEN_ACTIONS) == result["clips"]
    assert result["flagged"] == round(open_set["unseen_actions_flagged"] * len(UNSEEN_ACTIONS))
    written = json.loads((tmp_path / "manifest.json").read_text())
    (updated,) = [c for c in written["classifiers"] if c["name"] == name]
    assert updated["open_set"]["other_sources"] == result


def test_missing_clips_name_the_command_that_fetches_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fetch-unseen-clips"):
        packaged_clip_paths(tmp_path)


def test_a_package_that_cannot_be_fetched_says_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="apt-get download no-such-package-actionstyle"):
        download_package("deb:no-such-package-actionstyle", tmp_path)


def test_the_unseen_clips_export_measures_are_the_shared_ones_of_no_trained_action() -> None:
    manifest = json.loads((MODELS / "manifest.json").read_text())
    (entry,) = [c for c in manifest["classifiers"] if c["name"] == manifest["default_classifier"]]
    paths = unseen_action_paths(CLIPS.parent, entry["labels"])
    assert sorted(p.name for p in paths) == sorted(UNSEEN_ACTIONS)


def test_the_ceiling_finds_thresholds_that_separate_and_says_when_none_can() -> None:
    # Columns: open-set distance, top-1 probability. Twenty in-class clips near their class.
    in_class = np.column_stack([np.linspace(1.0, 2.0, 20), np.full(20, 0.9)])
    # Ten unseen clips: eight far away, two that look exactly like in-class clips.
    far = np.column_stack([np.linspace(3.0, 4.0, 8), np.full(8, 0.9)])
    unseen = np.vstack([far, in_class[[0, 5]]])
    ceiling = best_trade_offs(in_class, unseen)
    assert ceiling["most_flagged_with_confident_target"] == 0.8  # the two twins stay confident
    assert ceiling["most_confident_with_flagged_target"] == 1.0
    assert ceiling["both_targets_reachable"]

    # A third twin: 80 % flagged now costs in-class clips, and both targets cannot hold at once.
    unseen = np.vstack([far[:7], in_class[[0, 10, 18]]])
    ceiling = best_trade_offs(in_class, unseen)
    assert ceiling["most_flagged_with_confident_target"] == 0.7
    assert ceiling["most_confident_with_flagged_target"] < 0.95
    assert not ceiling["both_targets_reachable"]

    # The top-1 probability can separate what the distance cannot.
    unsure = unseen.copy()
    unsure[7:, 1] = 0.3
    assert best_trade_offs(in_class, unsure)["both_targets_reachable"]
