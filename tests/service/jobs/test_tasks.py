"""The Celery task calls the same classify function as the route (here without a broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.jobs.tasks import classify_file
from tests.utils.data import YOYO_CLIP


def test_classify_file_runs_in_process(models_dir: Path) -> None:
    result = classify_file.run(str(YOYO_CLIP), None, 2)
    scores = [p["score"] for p in result["predictions"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    assert result["video"]["frames"] == 187


def test_task_name_is_explicit() -> None:
    assert classify_file.name == "actionstyle.classify_file"


def test_task_refuses_an_unknown_model(models_dir: Path) -> None:
    with pytest.raises(LookupError, match="unknown model 'nope'"):
        classify_file.run(str(YOYO_CLIP), "nope", 1)
