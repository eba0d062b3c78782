"""The data study (EDA plots and summary) and the model comparison report."""

import json
from pathlib import Path

from tests.utils.data import REPO_ROOT, SHARED_DATA
from training.classify.eda import run_eda
from training.classify.reports import write_report
from training.classify.ucf101 import discover_clips


def test_eda_writes_the_study_plots_and_summary(tmp_path: Path) -> None:
    summary = run_eda(SHARED_DATA, tmp_path, max_clips_per_class=2)
    assert set(summary) == {label for label in (c.label for c in discover_clips(SHARED_DATA))}
    assert len(summary) == 9
    assert summary["YoYo"]["clips"] == 101 and summary["YoYo"]["clips_analysed"] == 2
    assert summary["YoYo"]["mean_duration_s"] > 1
    assert summary["Surfing"]["mean_duration_s"] > 1
    assert summary["ApplyEyeMakeup"]["layout"] == ["frames"]
    assert all(v["mean_flow_magnitude_px"] > 0 for v in summary.values())
    for name in (
        "clips_per_class",
        "durations",
        "rgb_histograms",
        "flow_magnitude",
        "sample_frames",
    ):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_report_has_a_row_and_a_confusion_matrix_per_classifier(tmp_path: Path) -> None:
    manifest = json.loads((REPO_ROOT / "exported_models" / "manifest.json").read_text())
    (tmp_path / "confusion_retired_model.png").write_bytes(b"a model no longer shipped")
    report = write_report(REPO_ROOT / "exported_models", tmp_path).read_text()
    for entry in manifest["classifiers"]:
        assert f"`{entry['name']}`" in report
        assert (tmp_path / f"confusion_{entry['name']}.png").exists()
    assert "study: CSN" in report
    assert not (tmp_path / "confusion_retired_model.png").exists()


def test_report_shows_each_models_open_set_numbers(tmp_path: Path) -> None:
    manifest = json.loads((REPO_ROOT / "exported_models" / "manifest.json").read_text())
    report = write_report(REPO_ROOT / "exported_models", tmp_path).read_text()
    assert "unseen flagged" in report
    for entry in manifest["classifiers"]:
        open_set = entry["open_set"]
        flagged = round(open_set["unseen_actions_flagged"] * open_set["unseen_action_clips"])
        other = open_set["other_sources"]
        row = next(line for line in report.splitlines() if f"`{entry['name']}`" in line)
        assert row.endswith(
            f"/ {flagged} of {open_set['unseen_action_clips']} + {other['flagged']} of 7 |"
        )
