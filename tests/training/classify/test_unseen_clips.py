"""Unseen actions from other sources: the exported model, run as the service runs it, flags them."""

import json
import shutil
from pathlib import Path

import pytest

from tests.utils.data import CLIPS, REPO_ROOT, UNSEEN_ACTIONS
from training.classify.unseen_clips import check_unseen, download_package, packaged_clip_paths

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
