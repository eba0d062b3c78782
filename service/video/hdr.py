"""HDR video (HLG or PQ, BT.2020) as the SDR BT.709 pictures the networks and players expect.

Phones record HDR by default: iPhones HLG (Dolby Vision 8.4), many Android phones PQ (HDR10).
Read as if it were SDR, their 10-bit BT.2020 signal comes out flat and washed out. Here the
signal is taken to display light as ITU-R BT.2100 defines it, with HDR reference white (203 cd/m²,
BT.2408) at SDR's 100 %; highlights above it are rolled off rather than clipped, the BT.2020
primaries converted to BT.709 (BT.2087), and the result gamma-encoded for a BT.1886 display.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorTrc

HDR_TRANSFERS = frozenset({int(ColorTrc.ARIB_STD_B67), int(ColorTrc.SMPTE2084)})
REFERENCE_WHITE_NITS = 203.0
HLG_PEAK_NITS = 1000.0  # the nominal display BT.2100 sets HLG's system gamma (1.2) for
# Linear light up to the knee is kept as it is, above it compressed towards 1: reference white
# (1.0) lands at 91 % (245 of 255 once encoded), a 1000 cd/m² highlight at white (255).
KNEE = 0.75

_SIGNAL_BITS = 12  # finer than a 10-bit source, coarse enough for a quick table
_BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)
_BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
_BT2020_TO_BT709 = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
    np.float32,
)


def is_hdr(frame: av.VideoFrame) -> bool:
    return frame.color_trc in HDR_TRANSFERS


def _hlg_scene_light(signal: np.ndarray) -> np.ndarray:
    """BT.2100 HLG inverse OETF: signal E' in [0, 1] -> scene light E in [0, 1]."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    low = signal**2 / 3
    high = (np.exp((np.maximum(signal, 0.5) - c) / a) + b) / 12
    return np.where(signal <= 0.5, low, high)


def _pq_nits(signal: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 (PQ) EOTF: signal E' in [0, 1] -> display light in cd/m²."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = signal ** (1 / m2)
    return 10000 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)


def _signal_table(transfer: int) -> np.ndarray:
    signal = np.linspace(0, 1, 1 << _SIGNAL_BITS, dtype=np.float64)
    if transfer == ColorTrc.ARIB_STD_B67:
        return _hlg_scene_light(signal).astype(np.float32)
    return (_pq_nits(signal) / REFERENCE_WHITE_NITS).astype(np.float32)


_TABLES = {transfer: _signal_table(transfer) for transfer in HDR_TRANSFERS}


def _roll_off(peak: np.ndarray) -> np.ndarray:
    """Linear light (1.0 = reference white) -> [0, 1): unchanged up to KNEE, then a smooth
    shoulder with the same slope at the knee that approaches 1 however bright the highlight."""
    span = 1 - KNEE
    above = KNEE + span * -np.expm1(-(peak - KNEE) / span)
    return np.where(peak <= KNEE, peak, above)


def to_sdr(rgb: np.ndarray, transfer: int, bt2020: bool = True) -> np.ndarray:
    """Non-linear RGB as uint16 (HLG or PQ signal; BT.2020 primaries, or BT.709 where a camera
    says so) -> BT.709 RGB uint8 for SDR."""
    steps = np.right_shift(rgb, 16 - _SIGNAL_BITS, dtype=np.uint16)
    light: np.ndarray = np.take(_TABLES[transfer], steps)  # HLG: scene light; PQ: display light
    if transfer == ColorTrc.ARIB_STD_B67:  # the OOTF: a gain on each pixel, by its luminance
        luma = cv2.transform(light, (_BT2020_LUMA if bt2020 else _BT709_LUMA)[None, :])
        gain = (HLG_PEAK_NITS / REFERENCE_WHITE_NITS) * cv2.pow(luma, 0.2)
    else:
        gain = np.ones(light.shape[:2], np.float32)
    if bt2020:
        light = cv2.transform(light, _BT2020_TO_BT709)
        np.maximum(light, 0, out=light)
    peak = np.maximum(np.maximum(light[..., 0], light[..., 1]), light[..., 2])
    # Both the gain and the roll-off scale a pixel's three channels alike, keeping its hue.
    scale: np.ndarray = _roll_off(gain * peak) / np.maximum(peak, 1e-9)
    light *= scale[..., None]
    return cv2.convertScaleAbs(cv2.pow(light, 1 / 2.4), alpha=255.0)


def frame_as_sdr(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> np.ndarray:
    """An HDR frame as SDR RGB uint8, scaled to `size` (stored, not displayed, orientation) in
    the signal domain first, so the conversion runs on the output's pixels, not a 4K source's."""
    width, height = size or (frame.width, frame.height)
    rgb = frame.to_ndarray(format="rgb48le", width=width, height=height, interpolation="AREA")
    return to_sdr(rgb, frame.color_trc, bt2020=frame.color_primaries != ColorPrimaries.BT709)
