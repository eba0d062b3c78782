"""Loading the classifiers under each `ort_memory_arena` setting: same answers, memory returned.

Where their sessions take working memory from (the `ort_memory_arena` setting), the same answers
whichever it is, the heap handed back after, and no call larger than one clip.
"""

from __future__ import annotations

import ctypes.util
import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.contract.manifest import load_manifest
from service.inference import memory
from service.inference.classifier import Classifier, classify, load_classifier
from service.inference.memory import release_freed_heap
from service.inference.registry import load_registry
from service.video.decode import DecodeLimits
from tests.utils.data import CLIPS, YOYO_CLIP

SMALL_MODEL = "csn"


def _options(classifier: Classifier) -> ort.SessionOptions:
    return classifier.session.get_session_options()


def _uses_env_allocators(options: ort.SessionOptions) -> bool:
    try:
        return options.get_session_config_entry("session.use_env_allocators") == "1"
    except RuntimeError:  # onnxruntime's answer for an entry never set
        return False


def _load(models_dir: Path, arena: str) -> Classifier:
    entry = next(e for e in load_manifest(models_dir).classifiers if e.name == SMALL_MODEL)
    return load_classifier(models_dir, entry, intra_op_threads=1, arena=arena)


def test_shared_arena_is_every_classifiers_default(models_dir: Path) -> None:
    registry = load_registry(models_dir, 1)
    for name in registry.classifier_names:
        options = _options(registry.classifier(name))
        assert _uses_env_allocators(options), name
        assert options.enable_mem_pattern is False, name


def test_a_second_registry_shares_the_same_arena(models_dir: Path) -> None:
    # onnxruntime refuses to register a second environment allocator; loading again must not try.
    first, second = _load(models_dir, "shared"), _load(models_dir, "shared")
    assert _uses_env_allocators(_options(second))
    assert first.session is not second.session


@pytest.mark.parametrize(("arena", "own_arena"), [("per_session", True), ("off", False)])
def test_other_arena_choices_keep_off_the_shared_one(
    models_dir: Path, arena: str, own_arena: bool
) -> None:
    options = _options(_load(models_dir, arena))
    assert options.enable_cpu_mem_arena is own_arena
    assert not _uses_env_allocators(options)


def test_every_arena_choice_gives_the_same_answer(models_dir: Path, shared_data: Path) -> None:
    answers = {
        arena: classify(YOYO_CLIP, _load(models_dir, arena), 5, DecodeLimits())
        for arena in ("shared", "per_session", "off")
    }
    labels = {arena: [p.label for p in a.predictions] for arena, a in answers.items()}
    assert labels["shared"] == labels["per_session"] == labels["off"]
    scores = {arena: [p.score for p in a.predictions] for arena, a in answers.items()}
    np.testing.assert_allclose(scores["shared"], scores["per_session"], atol=1e-5)
    np.testing.assert_allclose(scores["shared"], scores["off"], atol=1e-5)


def test_the_freed_heap_goes_back_where_the_c_library_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert release_freed_heap() is (ctypes.util.find_library("c") == "libc.so.6")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libnot-a-libc.so.0")
    memory._malloc_trim.cache_clear()  # looked up once per process
    try:
        assert release_freed_heap() is False
    finally:
        memory._malloc_trim.cache_clear()


class _RecordingSession:
    """The real session, with the batch size of every call written down."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session, self.batch_sizes = session, []

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.batch_sizes.extend(len(batch) for batch in feeds.values())
        return self.session.run(outputs, feeds)


def test_windows_reach_the_network_one_clip_at_a_time(models_dir: Path, shared_data: Path) -> None:
    # onnxruntime's arena keeps the largest call's working memory for good: a call with many
    # windows of a long video would leave the API that much larger after one request.
    real = _load(models_dir, "shared")
    recording = _RecordingSession(real.session)
    classifier = dataclasses.replace(real, session=recording)
    video = CLIPS / "kinetics_demo.mp4"  # 10 s: the whole clip and five 2 s windows
    answer = classify(video, classifier, 3, DecodeLimits(), window_s=2.0)
    assert answer.segments is not None and len(answer.segments) == 5
    assert recording.batch_sizes == [1] * 6
    alone = classify(video, real, 3, DecodeLimits())
    assert [p.label for p in answer.predictions] == [p.label for p in alone.predictions]
    np.testing.assert_allclose(
        [p.score for p in answer.predictions], [p.score for p in alone.predictions], atol=1e-5
    )


def test_each_request_hands_its_freed_heap_back(
    models_dir: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request's decoded frames are freed in pieces glibc would keep resident (15-60 MiB).
    from service.inference import classifier as classifier_module

    calls = []
    monkeypatch.setattr(classifier_module, "release_freed_heap", lambda: calls.append(1) or True)
    classify(YOYO_CLIP, _load(models_dir, "shared"), 3, DecodeLimits())
    assert calls == [1]
