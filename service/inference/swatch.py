"""A style's thumbnail: the style network run on a small landscape drawn in code.

A picture of a style should show its palette and its strokes on a familiar scene. Drawing the
scene here, rather than shipping a stylised frame per style, keeps media and dataset frames out
of the models folder and gives every style, including one installed later, a thumbnail made the
same way. The scene is drawn at the size videos are painted at (320x240) so the strokes have
their usual scale, and the result is scaled down.

    jpeg = style_thumbnail(engines.named("vangogh"))  # JPEG bytes, 160x120
"""

from __future__ import annotations

import cv2
import numpy as np

from service.inference.stylize import FramesFn

SCENE_SIZE = (320, 240)  # (width, height): the size UCF101 clips come in
THUMBNAIL_SIZE = (160, 120)
JPEG_QUALITY = 85


def landscape_scene() -> np.ndarray:
    """(240, 320, 3) uint8 RGB: sky, sun, hills, a field, a tree and a pond; the same every time."""
    width, height = SCENE_SIZE
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (ys / 130.0).clip(0, 1)[..., None]
    scene = (1 - t) * np.array([60, 120, 200], np.float32) + t * np.array([215, 228, 240])

    hills = 118 + 16 * np.sin(xs / 37.0) + 7 * np.sin(xs / 13.0 + 1.0)
    scene[ys > hills] = (95, 120, 150)
    field = 150 + 10 * np.sin(xs / 23.0 + 2.0)
    shade = ((ys - field) / (height - field)).clip(0, 1)[..., None]
    field_colour = (1 - shade) * np.array([120, 170, 70]) + shade * np.array([60, 110, 40])
    scene = np.where((ys > field)[..., None], field_colour, scene)

    image = scene.clip(0, 255).astype(np.uint8)
    cv2.circle(image, (250, 52), 22, (250, 215, 120), -1, cv2.LINE_AA)
    cv2.ellipse(image, (215, 205), (70, 16), 0, 0, 360, (70, 130, 190), -1, cv2.LINE_AA)
    cv2.rectangle(image, (72, 120), (82, 185), (90, 60, 35), -1)
    for dx, dy, r in ((0, 0, 30), (-22, 14, 22), (22, 12, 24)):
        cv2.circle(image, (77 + dx, 105 + dy), r, (40, 95, 45), -1, cv2.LINE_AA)
    # Fine grain, as a camera has: a network that paints strokes shows them on flat areas too.
    grain = np.random.default_rng(0).normal(0, 5, image.shape)
    return (image + grain).clip(0, 255).astype(np.uint8)


def style_thumbnail(style: FramesFn) -> bytes:
    """JPEG of the landscape painted by `style`, at THUMBNAIL_SIZE."""
    (painted,) = style([landscape_scene()])
    small = cv2.resize(painted, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("could not encode the thumbnail as JPEG")
    return jpeg.tobytes()
