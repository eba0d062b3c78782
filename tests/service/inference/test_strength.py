"""The strength dial: what the form value may be, and frames blended by it."""

from __future__ import annotations

import numpy as np
import pytest

from service.inference.strength import InvalidStrength, blend, parse_strength, with_strength

RANGE = "a number above 0 and at most 1 (1: the full style, 0.5: half-way to the original)"


@pytest.mark.parametrize(
    ("text", "value"), [(None, 1.0), ("", 1.0), (" 0.5 ", 0.5), ("1", 1.0), ("1e-3", 0.001)]
)
def test_strengths_accepted(text: str | None, value: float) -> None:
    assert parse_strength(text) == value


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("0", f"strength 0 would give back the video unchanged; send {RANGE}"),
        ("-0.0", f"strength 0 would give back the video unchanged; send {RANGE}"),
        ("-0.5", f"strength must be {RANGE}; -0.5 is out of range"),
        ("1.01", f"strength must be {RANGE}; 1.01 is out of range"),
        ("nan", f"strength must be {RANGE}; nan is out of range"),
        ("inf", f"strength must be {RANGE}; inf is out of range"),
        ("half", f"strength must be {RANGE}; 'half' is not a number"),
        ("50%", f"strength must be {RANGE}; '50%' is not a number"),
    ],
)
def test_strengths_refused(text: str, detail: str) -> None:
    with pytest.raises(InvalidStrength) as refused:
        parse_strength(text)
    assert str(refused.value) == detail


def test_blend_is_the_weighted_mean() -> None:
    original = np.full((4, 6, 3), 100, np.uint8)
    stylised = np.full((4, 6, 3), 200, np.uint8)
    assert (blend(original, stylised, 0.5) == 150).all()
    assert (blend(original, stylised, 0.25) == 125).all()
    assert blend(original, stylised, 1.0) is stylised


def test_with_strength_blends_each_frame_with_its_own_input() -> None:
    frames = [np.full((2, 2, 3), v, np.uint8) for v in (0, 100)]

    def invert(batch: list[np.ndarray]) -> list[np.ndarray]:
        return [255 - frame for frame in batch]

    out = with_strength(invert, 0.2)(frames)
    assert [int(frame[0, 0, 0]) for frame in out] == [51, 111]  # 0.2*255, 0.2*155 + 0.8*100
    assert with_strength(invert, 1.0) is invert
