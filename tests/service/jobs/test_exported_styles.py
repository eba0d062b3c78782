"""Every style training exported runs as a job on a real clip (and the test style, always)."""

from __future__ import annotations

import json
from pathlib import Path

import av

from service.settings import Settings
from tests.service.conftest import JobStack
from tests.service.jobs.test_stylize_jobs import finished, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.media import cut_clip
from tests.utils.styles import TEST_STYLE


def _exported_styles() -> list[str]:
    manifest = json.loads((Settings().models_dir / "manifest.json").read_text())
    return [entry["name"] for entry in manifest.get("styles", [])]


def test_every_exported_style_runs_as_a_job(job_stack: JobStack, tmp_path: Path) -> None:
    clip = cut_clip(AUDIO_CLIP, tmp_path / "short.avi", frames=16)
    styles = [*_exported_styles(), TEST_STYLE]
    listed = [s["name"] for s in job_stack.client.get("/models").json()["styles"]]
    assert set(styles) <= set(listed)
    jobs = {style: submit(job_stack.client, clip, style)["job_id"] for style in styles}
    for style, job_id in jobs.items():
        final = wait_for_job(job_stack.client, job_id, finished)
        assert final["state"] == "succeeded", (style, final)
        result = tmp_path / f"{style}.mp4"
        result.write_bytes(job_stack.client.get(f"/jobs/{job_id}/result").content)
        with av.open(str(result)) as output:
            assert output.streams.video[0].codec_context.name == "h264", style
            assert sum(1 for _ in output.decode(video=0)) == 16, style
