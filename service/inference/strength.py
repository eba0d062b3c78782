"""How strongly a style applies: the `strength` form value, and frames blended by it.

Strength 1 is the style network's output as it is; 0.5 is half-way between the original frame
and that output. The blend happens per frame, before temporal smoothing, so the smoothing sees
the frames the user asked for.

    strength = parse_strength(form_value)            # 1.0 when the field is left out
    engine = with_strength(engines.named("vangogh"), strength)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from service.inference.stylize import FramesFn

FULL_STRENGTH = 1.0
_RANGE = "a number above 0 and at most 1 (1: the full style, 0.5: half-way to the original)"


class InvalidStrength(ValueError):
    """`strength` is not a number above 0 and at most 1."""


def parse_strength(text: str | None) -> float:
    """The strength a form field asks for; the full style when the field is absent or empty."""
    if text is None or not text.strip():
        return FULL_STRENGTH
    shown = text.strip()[:32]
    try:
        value = float(shown)
    except ValueError:
        raise InvalidStrength(f"strength must be {_RANGE}; '{shown}' is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidStrength(f"strength must be {_RANGE}; {shown} is out of range")
    if value == 0.0:
        raise InvalidStrength(f"strength 0 would give back the video unchanged; send {_RANGE}")
    return value


def blend(original: np.ndarray, stylised: np.ndarray, strength: float) -> np.ndarray:
    """`strength * stylised + (1 - strength) * original`, rounded, as uint8 RGB."""
    if strength >= FULL_STRENGTH:
        return stylised
    return cv2.addWeighted(stylised, strength, original, 1.0 - strength, 0.0)


def with_strength(engine: FramesFn, strength: float) -> FramesFn:
    """`engine` whose every output frame is blended with its input frame by `strength`."""
    if strength >= FULL_STRENGTH:
        return engine

    def apply(frames: list[np.ndarray]) -> list[np.ndarray]:
        styled = engine(frames)
        return [blend(f, s, strength) for f, s in zip(frames, styled, strict=True)]

    return apply
