"""A corpus of phone-style videos built at test time with PyAV from the real clips in shared data.

Nothing here is committed as media: each builder takes real frames, marks them and writes a
small file the way a phone or a browser would (display rotation, variable frame rate, WebM,
Matroska, DCI 4K), so the tests can check the result by content.

    frames = marked_frames(AUDIO_CLIP, count=12, size=(160, 96))
    write_video(tmp_path / "phone.mov", frames, rotation=90)
    flashes = write_vfr_flashes(tmp_path / "vfr.mp4", AUDIO_CLIP)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# One tick of the clock the corpus writes timestamps in: 1/30 and 1/15 s are whole ticks.
CLOCK = Fraction(1, 90_000)
AUDIO_RATE = 48_000
BEEP_S = 0.03
MARKER_COLOUR = (255, 255, 255)
# Audio frame sizes the encoders want.
_FRAME_SAMPLES = {"aac": 1024, "ac3": 1536, "libopus": 960, "libmp3lame": 1152}


@dataclass(frozen=True)
class Audio:
    codec: str = "aac"
    samples: np.ndarray | None = None  # mono float32 in -1..1 at `rate`; None: silence
    seconds: float = 0.0
    rate: int = AUDIO_RATE


def real_frames(clip: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The first `count` frames of a real clip as RGB uint8, resized to `size` (width, height)."""
    frames = []
    with av.open(str(clip)) as source:
        for frame in source.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), size, cv2.INTER_AREA))
            if len(frames) == count:
                break
    if len(frames) < count:
        raise ValueError(f"{clip} has only {len(frames)} frames, {count} wanted")
    return frames


def marker_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the marker: a square in the top-left corner."""
    side = min(width, height) // 3
    return 0, 0, side, side


def mark(frame: np.ndarray) -> np.ndarray:
    """The frame with a white square in its top-left corner: which way is up, by content."""
    marked = frame.copy()
    left, top, right, bottom = marker_box(frame.shape[1], frame.shape[0])
    marked[top:bottom, left:right] = MARKER_COLOUR
    return marked


def marked_frames(clip: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [mark(frame) for frame in real_frames(clip, count, size)]


def beeps(starts_s: list[float], seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """Silence with a short 1 kHz beep starting at each of `starts_s`."""
    samples = np.zeros(round(seconds * rate), np.float32)
    length = round(BEEP_S * rate)
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(length) / rate).astype(np.float32)
    for start in starts_s:
        at = round(start * rate)
        samples[at : at + length] = tone[: len(samples) - at]
    return samples


TITLE_STAND_IN = "\x01"


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    times_s: list[Fraction] | None = None,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    mirrored: bool = False,
    audio: Audio | None = None,
    container: str | None = None,
    keyframe_every: int | None = None,
    pixel_aspect: Fraction | None = None,
    title: bytes | None = None,
) -> Path:
    """Encode displayed pictures `frames`; each shown at `times_s` (default: i / fps).

    With `rotation` (degrees counter-clockwise, as phones record), the pixels are stored turned
    the other way and the display matrix says how to turn them back, so a player shows `frames`.
    With `mirrored`, the stored pixels are also mirrored and the matrix mirrors them back after
    the turn (FFmpeg's av_display_matrix_flip), as `ffmpeg -display_hflip` and editors write it.
    With `keyframe_every`, H.264 gets a keyframe that often and B-frames between, as cameras write.
    With `pixel_aspect` (a DVD's or a DV camera's 64:45, say), the pictures are stored squeezed to
    that many times narrower pixels, which a player widens again.
    With `title`, the container and the video stream are titled with those bytes as they are,
    UTF-8 or not (old Windows tools wrote titles and paths in their code page).
    """
    times_s = times_s or [Fraction(i, fps) for i in range(len(frames))]
    turns = round(rotation / 90) % 4
    shown = [frame[:, ::-1] for frame in frames] if mirrored else frames
    stored = [np.ascontiguousarray(np.rot90(frame, -turns)) for frame in shown]
    if pixel_aspect is not None:  # stored pixels are the ones squeezed, before any turn
        narrow = round(stored[0].shape[1] / pixel_aspect / 2) * 2  # even, for yuv420p
        stored = [cv2.resize(f, (narrow, f.shape[0]), interpolation=cv2.INTER_AREA) for f in stored]
    height, width = stored[0].shape[:2]
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if title is not None:
            out.metadata["title"] = video.metadata["title"] = TITLE_STAND_IN * len(title)
        # MPEG-2 takes only its frame rate's clock; the others the corpus's finer one.
        clock = Fraction(1, fps) if codec == "mpeg2video" else CLOCK
        video.codec_context.time_base = clock
        if pixel_aspect is not None:
            video.codec_context.sample_aspect_ratio = pixel_aspect
        if codec == "mpeg2video":
            video.bit_rate = 8_000_000  # a DVD's
        if codec == "libx264" and keyframe_every:
            video.options = {"preset": "veryfast", "crf": "18", "g": str(keyframe_every)}
        elif codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18"}
        if mirrored:
            video.set_display_matrix(_mirrored_turn(rotation))
        elif turns:
            video.set_display_rotation(rotation)
        sound = _add_audio(out, audio) if audio is not None else None
        for array, at in zip(stored, times_s, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = round(at / clock)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _write_audio(out, sound, audio)
    if title is not None:  # FFmpeg writes only UTF-8: a stand-in of the same length, then bytes
        stand_in = TITLE_STAND_IN.encode() * len(title)
        path.write_bytes(path.read_bytes().replace(stand_in, title))
    return path


def _mirrored_turn(rotation: int) -> list[int]:
    """FFmpeg's display matrix for a turn of `rotation` degrees counter-clockwise followed by a
    left-right mirror: av_display_rotation_set, then av_display_matrix_flip's negated first
    column."""
    radians = np.radians(rotation)
    cos, sin = round(np.cos(radians)), round(np.sin(radians))
    turn = [cos, -sin, 0, sin, cos, 0]
    flip = [-1, 1, 1, -1, 1, 1]
    return [v * f * 65536 for v, f in zip(turn, flip, strict=True)] + [0, 0, 1 << 30]


class _Stream(io.RawIOBase):
    """A sink that cannot seek back, as a browser's MediaRecorder writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.data += data
        return len(data)


def write_recording(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """A VP8 WebM written as it streams, like a browser's recording: no duration, no frame count
    and no index of keyframes in the file."""
    sink = _Stream()
    height, width = frames[0].shape[:2]
    with av.open(sink, "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8", "g": str(fps)}
        for array in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(video.encode(None))
    path.write_bytes(sink.data)
    return path


def write_resized_recording(
    path: Path, pictures: list[np.ndarray], sizes: list[tuple[int, int]], fps: int = 30
) -> Path:
    """A VP8 WebM whose picture size changes mid-stream, as a browser records a window being
    resized: `pictures` split evenly into one part per size in `sizes`, each part encoded at
    its size and the parts' packets joined into one stream (each part starts on a keyframe)."""
    per_part = len(pictures) // len(sizes)
    with av.open(str(path), "w", format="webm") as out:
        stream = None
        for number, size in enumerate(sizes):
            part_path = path.with_name(f"{path.stem}-part{number}.webm")
            chunk = pictures[number * per_part : (number + 1) * per_part]
            write_video(part_path, [cv2.resize(p, size) for p in chunk], fps=fps, codec="libvpx")
            with av.open(str(part_path)) as part:
                source = part.streams.video[0]
                stream = stream or out.add_stream_from_template(source)
                offset = round(number * per_part / fps / source.time_base)
                for packet in part.demux(source):
                    if packet.dts is None:
                        continue
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = stream
                    out.mux(packet)
            part_path.unlink()
    return path


def _add_audio(out: av.container.OutputContainer, audio: Audio) -> av.audio.stream.AudioStream:
    stream = out.add_stream(audio.codec, rate=audio.rate)
    stream.layout = "mono"
    return stream


def _write_audio(out, stream, audio: Audio) -> None:
    samples = audio.samples
    if samples is None:
        samples = np.zeros(round(audio.seconds * audio.rate), np.float32)
    chunk = _FRAME_SAMPLES.get(audio.codec, 1024)
    fmt = stream.codec_context.codec.audio_formats[0].name
    for start in range(0, len(samples), chunk):
        piece = np.zeros(chunk, np.float32)
        piece[: len(samples) - start] = samples[start : start + chunk]
        data = piece[None]
        if fmt.startswith(("s16", "s32")):
            bits = 16 if fmt.startswith("s16") else 32
            data = (data * (2 ** (bits - 1) - 1)).astype(np.int16 if bits == 16 else np.int32)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.rate, frame.pts = audio.rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


@dataclass(frozen=True)
class FlashClip:
    path: Path
    times_s: list[Fraction]  # every frame's presentation time
    flash_frames: list[int]  # the white frames, each with a beep starting at its time


def write_vfr_flashes(path: Path, clip: Path, size: tuple[int, int] = (160, 120)) -> FlashClip:
    """1 s at 30 fps, then 1 s at 15 fps, of a real clip; a white frame and a beep in each part.

    A player shows each white frame as its beep starts; an encoder that lays frames out at
    the average rate shows the later ones up to a quarter of a second off.
    """
    times = [Fraction(i, 30) for i in range(30)] + [1 + Fraction(i, 15) for i in range(15)]
    frames = real_frames(clip, len(times), size)
    flash_frames = [9, 21, 36, 42]
    for index in flash_frames:
        frames[index] = np.full_like(frames[index], 255)
    audio = Audio(samples=beeps([float(times[i]) for i in flash_frames], 2.0))
    write_video(path, frames, times_s=times, fps=30, audio=audio)
    return FlashClip(path, times, flash_frames)


def cut_without_reencoding(source: Path, dest: Path, start_s: float) -> Path:
    """`source` from `start_s` on, cut as `ffmpeg -ss START -c copy`, LosslessCut or QuickTime's
    trim cut: the packets from the keyframe before the cut are kept, their times moved back by
    `start_s` (those before the cut fall below zero), and the MP4's edit list tells players to
    start showing at the cut. No frame is re-encoded, so the file declares more frames than a
    player shows."""
    with av.open(str(source)) as inp:
        wanted = [s for s in inp.streams if s.type in ("video", "audio")]
        options = {"use_editlist": "1", "avoid_negative_ts": "disabled"}
        with av.open(str(dest), "w", format="mp4", options=options) as out:
            streams = {s.index: out.add_stream_from_template(s) for s in wanted}
            for packet in inp.demux(*wanted):
                if packet.dts is None:  # end of a stream
                    continue
                shift = round(start_s / packet.time_base)
                packet.dts -= shift
                if packet.pts is not None:
                    packet.pts -= shift
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dest


def frame_times(path: Path) -> list[float]:
    """Presentation time of every decoded frame, in seconds."""
    with av.open(str(path)) as source:
        return [float(frame.time) for frame in source.decode(video=0)]


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame as a player shows it (display rotation applied), RGB uint8."""
    with av.open(str(path)) as source:
        return [
            np.ascontiguousarray(np.rot90(f.to_ndarray(format="rgb24"), round(f.rotation / 90)))
            for f in source.decode(video=0)
        ]


def beep_starts(path: Path, threshold: float = 0.1, gap_s: float = 0.1) -> list[float]:
    """Times (s) where the sound rises above `threshold` after at least `gap_s` of quiet."""
    times, values = [], []
    with av.open(str(path)) as source:
        for frame in source.decode(audio=0):
            data = frame.to_ndarray().astype(np.float32)
            if frame.format.name.startswith(("s16", "s32")):
                data /= 2.0 ** (8 * frame.format.bytes - 1)
            channels = frame.layout.nb_channels
            planar = frame.format.is_planar
            mono = data.mean(axis=0) if planar else data.reshape(-1, channels).mean(axis=1)
            values.append(mono)
            times.append(float(frame.time) + np.arange(len(mono)) / frame.sample_rate)
    signal, clock = np.concatenate(values), np.concatenate(times)
    loud = np.flatnonzero(np.abs(signal) > threshold)
    starts = [loud[0]] if len(loud) else []
    starts += [b for a, b in zip(loud, loud[1:], strict=False) if clock[b] - clock[a] > gap_s]
    return [float(clock[i]) for i in starts]


def write_old_phone_3gp(path: Path, pictures: list[np.ndarray], fps: int = 15) -> Path:
    """A 3GP as feature phones and early smartphones wrote them: H.263 at QCIF (176x144, whose
    pixels are 12:11, so it shows 192x144) and AMR-NB speech audio at 8 kHz (a second of it)."""
    with av.open(str(path), "w", format="3gp") as out:
        video = out.add_stream("h263", rate=fps)
        video.width, video.height, video.pix_fmt = 176, 144, "yuv420p"
        speech = out.add_stream("libopencore_amrnb", rate=8000)
        speech.layout = "mono"
        for index, picture in enumerate(pictures):
            resized = cv2.resize(picture, (176, 144), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(resized, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
        for start in range(0, len(tone), 160):  # AMR-NB codes 20 ms frames
            sound = av.AudioFrame.from_ndarray(tone[None, start : start + 160], "s16", "mono")
            sound.rate, sound.pts = 8000, start
            out.mux(speech.encode(sound))
        out.mux(speech.encode(None))
    return path


def weave(earlier: np.ndarray, later: np.ndarray, top_first: bool) -> np.ndarray:
    """One interlaced frame of two moments: the first field's rows (even rows when top field
    first) from `earlier`, the other field's from `later`."""
    woven = later.copy()
    first_rows = slice(0, None, 2) if top_first else slice(1, None, 2)
    woven[first_rows] = earlier[first_rows]
    return woven


def write_interlaced_video(path: Path, pictures: list[np.ndarray], fps: int = 25) -> Path:
    """MPEG-2 in MPEG-PS, interlaced as a DVD or a camcorder writes it: each frame weaves two
    successive `pictures` (2 x fps a second), bottom field first, as the encoder flags it."""
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w", format="mpeg") as out:
        video = out.add_stream("mpeg2video", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 8_000_000
        flags = av.codec.context.Flags
        video.codec_context.flags |= flags.interlaced_dct | flags.interlaced_me
        for index in range(len(pictures) // 2):
            woven = weave(pictures[2 * index], pictures[2 * index + 1], top_first=False)
            frame = av.VideoFrame.from_ndarray(woven, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def write_windows_media(path: Path, pictures: list[np.ndarray], fps: int = 25) -> Path:
    """A WMV as Windows Movie Maker and cameras of the 2000s wrote them: WMV8 and WMA in ASF."""
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w", format="asf") as out:
        video = out.add_stream("wmv2", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 2_000_000
        sound = out.add_stream("wmav2", rate=44100)
        sound.layout, sound.bit_rate = "stereo", 128_000
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        step = sound.codec_context.frame_size or 2048
        for start in range(0, round(44100 * len(pictures) / fps), step):
            silence = av.AudioFrame.from_ndarray(np.zeros((2, step), np.float32), "fltp", "stereo")
            silence.rate, silence.pts = 44100, start
            out.mux(sound.encode(silence))
        out.mux(sound.encode(None))
    return path


def write_avchd_clip(path: Path, pictures: list[np.ndarray], fps: int = 25) -> Path:
    """An AVCHD camcorder's .MTS: MPEG-TS in 192-byte packets (a timestamp before each), H.264
    coded interlaced (two successive `pictures` a frame, top field first) and AC-3 sound."""
    height, width = pictures[0].shape[:2]
    sound = Audio("ac3", samples=beeps([0.2], len(pictures) / (2 * fps)))
    with av.open(str(path), "w", format="mpegts", options={"mpegts_m2ts_mode": "1"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18", "x264-params": "interlaced=1:tff=1"}
        audio = _add_audio(out, sound)
        for index in range(len(pictures) // 2):
            woven = weave(pictures[2 * index], pictures[2 * index + 1], top_first=True)
            frame = av.VideoFrame.from_ndarray(woven, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _write_audio(out, audio, sound)
    return path


def combing(picture: np.ndarray) -> float:
    """How far each row is from the mean of its neighbours: high where fields of two moments
    are woven into one frame (a moving edge drawn as a comb), low in a whole picture."""
    grey = picture.astype(np.float32).mean(axis=2)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())


def with_damaged_packets(
    source: Path, dest: Path, kind: str, numbers: set[int], flipped: bool = False
) -> Path:
    """`source` remuxed with the payload of its `kind` ("audio", "video") packets `numbers`
    (counted from 1) replaced by noise of the same size, as a bad card or transfer leaves them;
    with `flipped`, only the bits of the byte in the middle of each are flipped."""
    with (
        av.open(str(source)) as src,
        av.open(str(dest), "w", format=src.format.name.split(",")[0]) as out,
    ):
        streams = {
            s.index: out.add_stream_from_template(s)
            for s in (*src.streams.video, *src.streams.audio)
        }
        seen = 0
        for packet in src.demux(*src.streams.video, *src.streams.audio):
            if packet.size == 0:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == kind and (seen := seen + 1) in numbers:
                payload = np.random.default_rng(seen).integers(0, 256, packet.size, np.uint8)
                if flipped:
                    payload = np.frombuffer(bytes(packet), np.uint8).copy()
                    payload[packet.size // 2] ^= 0xFF
                damaged = av.Packet(payload.tobytes())
                damaged.pts, damaged.dts = packet.pts, packet.dts
                damaged.time_base, damaged.is_keyframe = packet.time_base, packet.is_keyframe
                packet = damaged
            packet.stream = target
            out.mux(packet)
    return dest


def with_stray_stream(source: Path, dest: Path) -> Path:
    """The MPEG-TS `source` with the first video PES that starts past its middle moved to a PID
    its programme table does not list, as a bit error in a packet's header does: FFmpeg meets a
    stream there that it did not find when the file was opened."""
    data = bytearray(source.read_bytes())
    packet_size, stray_pid = 188, 0x169
    for offset in range(len(data) // 2 // packet_size * packet_size, len(data), packet_size):
        starts_unit = data[offset + 1] & 0x40
        payload_at = offset + 4 + (1 + data[offset + 4] if data[offset + 3] & 0x20 else 0)
        if starts_unit and data[payload_at : payload_at + 4] == b"\x00\x00\x01\xe0":
            data[offset + 1] = (data[offset + 1] & 0xE0) | stray_pid >> 8
            data[offset + 2] = stray_pid & 0xFF
            dest.write_bytes(bytes(data))
            return dest
    raise ValueError(f"{source} has no video PES start past its middle")


def with_video_timestamp_moved(
    source: Path, dest: Path, number: int, ticks: int, decoding_only: bool = False
) -> Path:
    """The MPEG-TS `source` with the timestamps of its `number`th video PES (counted from 1)
    moved by `ticks` of 90 kHz, as one bit error in them does: 2**32 is 13 hours and a quarter.
    With `decoding_only`, its decoding time (DTS) alone."""
    data = bytearray(source.read_bytes())
    seen = 0
    for offset in range(0, len(data), 188):
        payload_at = offset + 4 + (1 + data[offset + 4] if data[offset + 3] & 0x20 else 0)
        if data[offset + 1] & 0x40 and data[payload_at : payload_at + 4] == b"\x00\x00\x01\xe0":
            seen += 1
            if seen == number:
                has_dts = data[payload_at + 7] >> 6 == 3  # PTS always, DTS when it differs
                if decoding_only and not has_dts:
                    raise ValueError(f"video PES {number} of {source} has no DTS")
                first = payload_at + (14 if decoding_only else 9)
                for at in range(first, payload_at + (19 if has_dts else 14), 5):
                    _move_pes_timestamp(data, at, ticks)
                dest.write_bytes(bytes(data))
                return dest
    raise ValueError(f"{source} has fewer than {number} video PES")


def _move_pes_timestamp(data: bytearray, at: int, ticks: int) -> None:
    """A PES header's 33-bit timestamp at `at`: 3 bits, 15 and 15, each run ended by a 1."""
    field = data[at : at + 5]
    value = (field[0] >> 1 & 7) << 30 | field[1] << 22 | field[2] >> 1 << 15
    value = (value | field[3] << 7 | field[4] >> 1) + ticks & (1 << 33) - 1
    data[at : at + 5] = bytes(
        [
            field[0] & 0xF0 | (value >> 30 & 7) << 1 | 1,
            value >> 22 & 0xFF,
            (value >> 15 & 0x7F) << 1 | 1,
            value >> 7 & 0xFF,
            (value & 0x7F) << 1 | 1,
        ]
    )


# Saturated colours side by side, where a wrong YUV matrix shows most.
PATCH_COLOURS = [(200, 30, 30), (20, 180, 60), (30, 60, 200), (230, 200, 40), (128, 128, 128)]


def colour_patches(width: int, height: int) -> np.ndarray:
    picture = np.zeros((height, width, 3), np.uint8)
    step = width // len(PATCH_COLOURS)
    for index, colour in enumerate(PATCH_COLOURS):
        picture[:, index * step : (index + 1) * step] = colour
    return picture


def patch_colours(picture: np.ndarray) -> list[tuple[int, ...]]:
    """The colour at the middle of each patch of `colour_patches`, as RGB."""
    height, width = picture.shape[:2]
    step = width // len(PATCH_COLOURS)
    middles = [picture[height // 2, i * step + step // 2] for i in range(len(PATCH_COLOURS))]
    return [tuple(int(v) for v in middle) for middle in middles]


_BT709_TO_BT2020 = np.array(
    [[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]]
)  # ITU-R BT.2087


def sdr_as_hdr_signal(frame: np.ndarray, transfer: str, bt2020: bool = True) -> np.ndarray:
    """An SDR picture (BT.709 RGB uint8) as a phone's HDR signal (BT.2020 RGB uint16, or BT.709
    as some cameras record HLG), mapped the way BT.2408 maps SDR into HDR: SDR's 100 % at HDR
    reference white (203 cd/m²)."""
    light = (frame / 255.0) ** 2.4
    if bt2020:
        light = light @ _BT709_TO_BT2020.T
    nits = 203.0 * light
    if transfer == "pq":  # SMPTE ST 2084 inverse EOTF
        m1, m2 = 2610 / 16384, 2523 / 4096 * 128
        c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        y = (nits / 10000) ** m1
        signal = ((c1 + c2 * y) / (1 + c3 * y)) ** m2
    else:  # BT.2100 HLG: the inverse OOTF for a 1000 cd/m² display, then the OETF
        weights = [0.2627, 0.6780, 0.0593] if bt2020 else [0.2126, 0.7152, 0.0722]
        display_luma = nits @ np.array(weights)
        scene_luma = np.maximum(display_luma / 1000, 1e-12) ** (1 / 1.2)
        scene = nits / (1000 * scene_luma[..., None] ** 0.2)
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        high = a * np.log(np.maximum(12 * scene - b, 1e-12)) + c
        signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), high)
    return np.round(np.clip(signal, 0, 1) * 65535).astype(np.uint16)


def write_hdr_video(
    path: Path,
    frames: list[np.ndarray],
    transfer: str = "hlg",
    fps: int = 30,
    rotation: int = 0,
    bt2020: bool = True,
) -> Path:
    """HEVC Main 10 in BT.2020 with an HLG (iPhone) or PQ (HDR10, Android) transfer, tagged as
    phones tag it, from SDR pictures `frames` (see sdr_as_hdr_signal); with `bt2020` False,
    HLG in BT.709 primaries, as some cameras offer."""
    trc = {"hlg": 18, "pq": 16}[transfer]  # ARIB STD-B67, SMPTE ST 2084
    turns = round(rotation / 90) % 4
    stored = [np.ascontiguousarray(np.rot90(frame, -turns)) for frame in frames]
    height, width = stored[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx265", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p10le"
        context = video.codec_context
        primaries = 9 if bt2020 else 1
        context.color_primaries, context.color_trc, context.colorspace = primaries, trc, 9
        context.color_range = 1
        video.options = {"crf": "12", "preset": "ultrafast", "x265-params": "log-level=error"}
        if turns:
            video.set_display_rotation(rotation)
        for index, array in enumerate(stored):
            rgb = sdr_as_hdr_signal(array, transfer, bt2020)
            signal = av.VideoFrame.from_ndarray(rgb, "rgb48le")
            frame = signal.reformat(
                format="yuv420p10le", dst_colorspace="BT2020", dst_color_range="MPEG"
            )
            frame.color_primaries, frame.color_trc = primaries, trc
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def write_broadcast_recording(
    path: Path,
    pictures: list[np.ndarray],
    sounds: list[tuple[str, int, str]],
    fps: int = 25,
    clock_restarts: bool = False,
) -> Path:
    """An MPEG-TS whose sound changes format part-way, as a TV recording's does when a programme
    in 5.1 follows adverts in stereo, or files joined end to end: the pictures are cut into
    len(sounds) equal parts, part i with a 440 Hz tone in sounds[i] = (codec, rate, layout).
    With `clock_restarts` each part's timestamps start again from zero, as in a camcorder's
    files joined with `cat`."""
    height, width = pictures[0].shape[:2]
    with open(path, "wb") as joined:
        for (codec, rate, layout), indices in zip(
            sounds, np.array_split(np.arange(len(pictures)), len(sounds)), strict=True
        ):
            restart = int(indices[0]) if clock_restarts else 0
            part = io.BytesIO()
            with av.open(part, "w", format="mpegts") as out:
                video = out.add_stream("libx264", rate=fps)
                video.width, video.height, video.pix_fmt = width, height, "yuv420p"
                video.codec_context.time_base = Fraction(1, fps)
                sound = out.add_stream(codec, rate=rate)
                sound.layout = layout
                for index in indices:
                    frame = av.VideoFrame.from_ndarray(pictures[index], format="rgb24")
                    frame.pts = int(index) - restart
                    out.mux(video.encode(frame))
                out.mux(video.encode(None))
                first_sample = (int(indices[0]) - restart) * rate // fps
                _write_tone(out, sound, first_sample, len(indices) * rate // fps)
            joined.write(part.getvalue())
    return path


def _write_tone(out, stream, first_sample: int, samples: int) -> None:
    context = stream.codec_context
    chunk, fmt, layout = context.frame_size or 1024, context.format, context.layout
    channels = len(layout.channels)
    for start in range(0, samples, chunk):
        at = np.arange(first_sample + start, first_sample + start + chunk)
        tone = 0.3 * np.sin(2 * np.pi * 440 * at / context.sample_rate)
        data = np.tile(tone, (channels, 1)) if fmt.is_planar else np.repeat(tone, channels)[None]
        if fmt.name.startswith("s16"):  # MP2's
            data = data * 32767
        frame = av.AudioFrame.from_ndarray(
            data.astype(np.int16 if fmt.name.startswith("s16") else np.float32),
            format=fmt.name,
            layout=layout.name,
        )
        frame.rate, frame.pts = context.sample_rate, first_sample + start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_capture_with_drops(
    path: Path, pictures: list[np.ndarray], every: int, fps: int = 25
) -> Path:
    """An AVI as capture tools write one that dropped every `every`-th frame: an empty chunk in
    its place, which the header counts as a frame and players show as the frame before."""
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w", format="avi") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for index, picture in enumerate(pictures):
            if index % every == every - 1:
                continue  # the muxer writes the empty chunk for the missing time
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def with_sound_block_moved_back(source: Path, dest: Path, number: int, ms: int) -> Path:
    """A WebM or Matroska `source` with its `number`-th sound block (from 1) labelled `ms`
    earlier, as a damaged cluster leaves one: the sound's time runs backwards there."""
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        position = [p.pos for p in container.demux(audio=0) if p.size][number - 1]
    # FFmpeg gives a block's position at its track number (one byte for so few tracks); its
    # time follows: signed 16 bits, in milliseconds from its cluster's.
    at = position + 1
    moved = int.from_bytes(data[at : at + 2], "big", signed=True) - ms
    data[at : at + 2] = moved.to_bytes(2, "big", signed=True)
    dest.write_bytes(bytes(data))
    return dest
