"""Stream a video through a frame transform into a browser-playable H.264 MP4, keeping its audio.

Decode, transform in batches and encode as the packets arrive, so memory stays flat whatever
the length. The output has the input's frame count, frame timing, duration and audio (copied when
MP4 can hold its codec, re-encoded to AAC otherwise); frames are capped at `max_side` (never
upscaled) with even dimensions, yuv420p, and the index up front (`+faststart`).

Before the transform, frames are shown as a player shows them: turned upright (a phone's display
rotation is applied to the pixels, and the output carries none), deinterlaced, with square
pixels, and HDR tone-mapped to SDR BT.709 (the output says it is BT.709). Each keeps its source
presentation time, so variable frame rate video stays in sync with its sound.

    restyle_video(src, dst, lambda frames: [f[..., ::-1] for f in frames], TranscodeOptions())
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from service.video.decode import VideoDecodeError
from service.video.frames import (
    decodable_frames,
    demuxed,
    displayed,
    displayed_size,
    fitted,
    open_video,
    orientation,
)
from service.video.seek import index_frames

logger = logging.getLogger(__name__)

# Audio copied as it is: what MP4 holds and every browser plays. Others are re-encoded to AAC,
# AC-3, E-AC-3 and ALAC among them: MP4 holds them, but Chromium plays them silent.
MP4_AUDIO_CODECS = {"aac", "mp3", "mp3float", "opus"}

# A transform returns its frames, or a Future of them so that work after it (the style job's
# temporal blend) overlaps the next batch; the encoding thread waits for it, in order.
FrameBatchFn = Callable[[list[np.ndarray]], list[np.ndarray] | Future[list[np.ndarray]]]
ProgressFn = Callable[[int, int], None]


class TranscodeCancelled(Exception):
    """The caller asked to stop; no output file is left behind."""


@dataclass(frozen=True)
class TranscodeOptions:
    max_side: int = 1280
    batch_size: int = 8
    crf: int = 20
    preset: str = "veryfast"
    # A file whose header declares N frames but yields fewer than this share of them is cut
    # short or damaged: refuse it rather than deliver a video that stops half-way.
    min_declared_fraction: float = 0.9


def video_time_base(stream: av.video.stream.VideoStream) -> Fraction:
    """The clock of the stream's timestamps: its time base, or one tick per nominal frame."""
    if stream.time_base:
        return Fraction(stream.time_base)
    return 1 / Fraction(stream.average_rate or 25)


def _video_start(stream: av.video.stream.VideoStream) -> Fraction:
    if stream.start_time is None or not stream.time_base:
        return Fraction(0)
    return stream.start_time * Fraction(stream.time_base)


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even dimensions no larger than the input, with the longest side at most `max_side`."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class Timeline:
    """Presentation times for decoded frames, in decoding order, strictly increasing.

    Decoders hand frames out in display order, but some files label them wrongly: AVIs with
    packed B-frames come out as pts 1, 2, 4, 3, ... Within a window of `depth` frames the
    labels are right as a set, so each frame takes the smallest label still waiting. Missing
    labels continue from the last one at the nominal rate. Each frame keeps its own duration
    (which sets how long the last one shows).
    """

    def __init__(self, step: int, depth: int = 8) -> None:
        self.step, self.depth = max(1, step), depth
        self._frames: deque[tuple[np.ndarray, int]] = deque()
        self._labels: list[int] = []
        self._last_label: int | None = None
        self._last_out: int | None = None

    def push(
        self, frame: np.ndarray, pts: int | None, duration: int | None
    ) -> Iterator[tuple[np.ndarray, int, int]]:
        if pts is None:
            pts = 0 if self._last_label is None else self._last_label + self.step
        self._last_label = pts if self._last_label is None else max(pts, self._last_label)
        self._frames.append((frame, duration or self.step))
        heapq.heappush(self._labels, pts)
        while len(self._frames) > self.depth:
            yield self._pop()

    def drain(self) -> Iterator[tuple[np.ndarray, int, int]]:
        while self._frames:
            yield self._pop()

    def _pop(self) -> tuple[np.ndarray, int, int]:
        pts = heapq.heappop(self._labels)
        if self._last_out is not None:
            pts = max(pts, self._last_out + 1)
        self._last_out = pts
        frame, duration = self._frames.popleft()
        return frame, pts, duration


class ClockJumps:
    """Packet times of a transport stream made continuous where its clock jumps.

    MPEG-TS and MPEG-PS carry a clock that may jump: files joined end to end (a camcorder's,
    with `cat`), a broadcast's splices, a damaged timestamp. As FFmpeg's command line does for
    such formats (its `-dts_delta_threshold`), a packet more than `JUMP` from where its stream
    was to go on moves the clock of every stream by the difference, and the next packet of any
    stream moves it back if that packet alone was wrong. A smaller step back (more than
    `STEP_BACK`) is held until its stream's next packet: if that one goes on from it the clock
    restarted and moves for both, else it was one damaged time, passed on as it came.
    """

    JUMP = Fraction(10)
    STEP_BACK = Fraction(1, 10)

    def __init__(self, frame_durations: dict[int, Fraction]) -> None:
        """`frame_durations`: per stream index, a packet's duration when it states none."""
        self.frame_durations = frame_durations
        self.offset = Fraction(0)  # added to every packet's time from here on
        self._next: dict[int, Fraction] = {}  # where each stream is to go on
        self._held: dict[int, av.Packet] = {}  # a step back, until its stream's next packet

    def mend(self, packet: av.Packet) -> list[av.Packet]:
        """The packets to pass on now, in order, their times moved onto one clock."""
        index = packet.stream.index
        held = self._held.pop(index, None)
        passed = []
        if not self._judged(packet):
            if held is not None:
                passed.append(self._shifted(held))
            return [*passed, self._shifted(packet)]
        gap = self._time(packet) - self._next[index] if index in self._next else Fraction(0)
        if held is not None:
            held_gap = self._time(held) - self._next[index]
            if gap < -self.STEP_BACK and abs(gap - held_gap) < 1:  # it goes on from the held one
                self.offset -= held_gap
                passed.append(self._placed(held))
                gap = self._time(packet) - self._next[index]
            else:
                passed.append(self._shifted(held))
        if abs(gap) > self.JUMP:
            self.offset -= gap
        elif gap < -self.STEP_BACK:
            self._held[index] = packet
            return passed
        passed.append(self._placed(packet))
        return passed

    def held(self) -> list[av.Packet]:
        """What is still held when the file ends, as it came."""
        held, self._held = list(self._held.values()), {}
        return [self._shifted(packet) for packet in held]

    def _judged(self, packet: av.Packet) -> bool:
        """Whether `packet`'s time can say where its stream goes: not the end of a stream (no
        time), nor a packet whose decoding and presentation times are a jump apart (one of the
        two is damaged), which is passed on with the clock as it is."""
        if packet.time_base is None or (packet.dts is None and packet.pts is None):
            return False
        if packet.dts is None or packet.pts is None:
            return True
        return abs(packet.pts - packet.dts) * Fraction(packet.time_base) <= self.JUMP

    def _time(self, packet: av.Packet) -> Fraction:
        """Where `packet` falls on the mended clock; only for a packet with a time."""
        stamp = packet.dts if packet.dts is not None else packet.pts
        assert stamp is not None
        return stamp * Fraction(packet.time_base) + self.offset

    def _shifted(self, packet: av.Packet) -> av.Packet:
        if packet.time_base is None:
            return packet
        if shift := round(self.offset / Fraction(packet.time_base)):
            if packet.dts is not None:
                packet.dts += shift
            if packet.pts is not None:
                packet.pts += shift
        return packet

    def _placed(self, packet: av.Packet) -> av.Packet:
        """`packet` shifted, and its stream's line carried on from it."""
        index, time = packet.stream.index, self._time(packet)
        base = Fraction(packet.time_base)
        duration = packet.duration * base if packet.duration else self.frame_durations[index]
        self._next[index] = time + duration
        return self._shifted(packet)


def _nominal_packet_duration(stream: av.stream.Stream) -> Fraction:
    if stream.type == "video":
        return 1 / Fraction(stream.average_rate or 25)
    return Fraction(0)  # sound packets state theirs; a jump of seconds dwarfs one missing


def estimate_frame_count(stream: av.video.stream.VideoStream) -> int:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and stream.average_rate:
        return max(1, round(float(stream.duration * stream.time_base * stream.average_rate)))
    return 0


def carried_audio(source: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The sound the result carries: the first audio stream FFmpeg can read. One in a codec it
    does not know is left out, as players leave it out, rather than failing the job."""
    for stream in source.streams.audio:
        if stream.codec_context is not None:
            return stream
    if source.streams.audio:
        logger.warning("the video's sound is in a codec FFmpeg cannot read: the result is silent")
    return None


def aac_sample_rate(source_rate: int) -> int:
    """The AAC rate for sound at `source_rate`: the same where AAC has it (up to 96 kHz), else
    48 kHz for a studio recorder's 176.4 or 192 kHz, else the next rate up."""
    rates = sorted(av.codec.Codec("aac", "w").audio_rates or [48_000])
    if source_rate in rates:
        return source_rate
    if source_rate > rates[-1]:
        return 48_000
    return next(rate for rate in rates if rate > source_rate)


def _indexed_frame_count(src: Path) -> int:
    index = index_frames(src)
    return index.frames if index is not None else 0


class _Encoder:
    """Owns the output container: an H.264 stream and, when the input has one, its audio."""

    def __init__(
        self,
        dst: Path,
        source: av.container.InputContainer,
        size: tuple[int, int],
        options: TranscodeOptions,
    ) -> None:
        in_video = source.streams.video[0]
        self.container = av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"})
        rate = in_video.average_rate or Fraction(25)
        self.video = self.container.add_stream("libx264", rate=rate)
        self.video.width, self.video.height = size
        self.video.pix_fmt = "yuv420p"
        # BT.709, said in the stream: untagged, browsers guess the matrix by the picture's size
        # (Chromium reads a 1280x720 video as BT.709), and a guess is a colour shift.
        context = self.video.codec_context
        context.colorspace = context.color_primaries = context.color_trc = int(Colorspace.ITU709)
        context.color_range = int(ColorRange.MPEG)
        # The source's own clock, so each frame keeps its presentation time: variable frame
        # rate video (phones) stays in sync with its audio. No display rotation is written:
        # the pixels are turned instead, the safer default, as not every player reads the tag.
        self.time_base = video_time_base(in_video)
        self.video.codec_context.time_base = self.time_base
        self.video.options = {"crf": str(options.crf), "preset": options.preset}
        self.frames_written = 0
        # Video starts at zero; audio moves back by the time the source says its video starts
        # (the stream's start time: some decoders label the first frame one frame late), so
        # the offset between the two stays the source's.
        self.video_start = _video_start(in_video)
        self._first_pts: int | None = None
        # pts -> duration of frames in the encoder: libx264 drops frame durations, and the MP4
        # muxer takes the track's end from the last packet, held back until it is known.
        self._durations: dict[int, int] = {}
        self._first_dts: int | None = None
        self._end_pts = 0
        self._held: av.Packet | None = None
        self.in_audio = carried_audio(source)
        self._sound_end = Fraction(-(10**9))  # where the sound encoded so far ends, in seconds
        self._copied_dts: int | None = None  # the last sound packet copied, in its time base
        self._write_failed = False
        self.audio = self.audio_resampler = None
        if self.in_audio is not None:
            if _copies_into_mp4(self.in_audio) and _fixes_track_formats(source):
                self.audio = self.container.add_stream_from_template(self.in_audio)
            else:
                sound_rate = aac_sample_rate(self.in_audio.rate or 44100)
                self.audio = self.container.add_stream("aac", rate=sound_rate)
                self.audio_resampler = _SoundResampler(self.audio.rate)

    def write_frames(self, frames: list[np.ndarray], times: list[tuple[int, int]]) -> None:
        """Encode `frames`, each shown at (pts, duration) in `self.time_base`, pts increasing."""
        for array, (at, duration) in zip(frames, times, strict=True):
            if self._first_pts is None:
                self._first_pts = at
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame = frame.reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
            frame.pts = at - self._first_pts
            self._durations[frame.pts] = duration
            self._end_pts = frame.pts + duration
            self.frames_written += 1
            self._mux_video(self.video.encode(frame))

    @property
    def shown_seconds(self) -> Fraction:
        """Where the frames written so far end, from the first one's start."""
        return self._end_pts * self.time_base

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            if self._first_dts is None and packet.dts is not None:
                self._first_dts = packet.dts
            if self._held is not None:
                self._mux(self._held)
            self._held = packet

    def _mux_last_video(self) -> None:
        """The last packet in decoding order lasts until the last frame shown ends."""
        packet, self._held = self._held, None
        if packet is None:
            return
        if packet.dts is not None and self._first_dts is not None:
            # B-frames start decoding before zero; the muxer's edit list hides that delay.
            packet.duration = max(1, self._end_pts - packet.dts + self._first_dts)
        self._mux(packet)

    def write_audio(self, packet: av.Packet) -> None:
        """One packet of the input's audio stream (there is none to write without one)."""
        in_audio, audio, shift = self.in_audio, self.audio, self.video_start
        if in_audio is None or audio is None:
            return
        if self.audio_resampler is None:
            if packet.dts is None or (
                self._copied_dts is not None and packet.dts <= self._copied_dts
            ):
                return  # no time, or time running back (a damaged block): MP4 refuses it
            self._copied_dts = packet.dts
            if shift:
                offset = round(shift / packet.time_base)
                packet.dts -= offset
                if packet.pts is not None:
                    packet.pts -= offset
            packet.stream = audio
            self._mux(packet)
            return
        # What packet.decode() does, through the stream's typed decode (audio frames only).
        try:
            frames = in_audio.decode(packet)
        except av.error.FFmpegError:
            # A damaged packet (decoders name it in several ways: AAC's include "Operation not
            # permitted"): a moment of silence, as players skip it, not a failed job.
            return
        for frame in frames:
            self._encode_sound(self.audio_resampler.convert(frame))

    def _encode_sound(self, frames: list[av.AudioFrame]) -> None:
        assert self.audio is not None
        clock = Fraction(1, self.audio.rate)
        for frame in frames:
            if frame.pts is not None and frame.time_base is not None:
                # On the encoder's clock: a frame the resampler passed through as it came keeps
                # the source's (MPEG-TS: 1/90000), and the encoder reads each by the first's.
                start = frame.pts * frame.time_base - self.video_start
                duration = Fraction(frame.samples, frame.sample_rate)
                if start < self._sound_end:
                    if self._sound_end - start > duration / 2:
                        # Files joined end to end overlap where each one's sound outlasts its
                        # pictures; time only moves forward in the result: dropped.
                        continue
                    start = self._sound_end  # the source clock's rounding: kept seamless
                frame.pts, frame.time_base = round(start / clock), clock
                self._sound_end = start + duration
            self._mux(self.audio.encode(frame))

    def _mux(self, packets: av.Packet | list[av.Packet]) -> None:
        # After a write has failed (a full disk), FFmpeg's MP4 muxer crashes the process on the
        # next packet: none is sent after the first failure.
        if self._write_failed:
            return
        try:
            self.container.mux(packets)
        except OSError:
            self._write_failed = True
            raise

    def close(self) -> None:
        try:
            self._mux_video(self.video.encode(None))
            self._mux_last_video()
            if self.audio_resampler is not None and self.audio is not None:
                self._encode_sound(self.audio_resampler.flush())
                self._mux(self.audio.encode(None))
        finally:
            if self._write_failed:  # that error is on its way up; the trailer fails as well
                with suppress(OSError):
                    self.container.close()
            else:
                self.container.close()


def _copies_into_mp4(sound: av.audio.stream.AudioStream) -> bool:
    """Whether an MP4 can hold `sound` as it is: a codec it holds, and for Opus the header
    (OpusHead) the MP4 box is made from, which a damaged WebM may have lost (the file cannot
    then be finished)."""
    context = sound.codec_context
    if context.name not in MP4_AUDIO_CODECS:
        return False
    return context.name != "opus" or bool(context.extradata)


def _fixes_track_formats(source: av.container.InputContainer) -> bool:
    """Whether the container states each track's format once for the whole file (MP4, MOV,
    Matroska, WebM), so that its sound can be copied into an MP4 as it is. An MPEG transport or
    program stream, an AVI, may change it part-way (a TV recording's adverts in stereo, its
    film in 5.1; files joined end to end): their sound is encoded again."""
    return bool({"mov", "mp4", "matroska", "webm"} & set(source.format.name.split(",")))


class _SoundResampler:
    """Sound in whatever format each frame comes in -> float planar stereo at `rate`, for the
    AAC encoder. PyAV's resampler takes its input format from its first frame and refuses any
    other: a new one starts wherever the format changes."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        converted: list[av.AudioFrame] = []
        if (kind := (frame.format.name, frame.layout.name, frame.sample_rate)) != self._input:
            converted = self.flush()
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=self.rate)
            self._input = kind
        assert self._resampler is not None
        return converted + self._resampler.resample(frame)

    def flush(self) -> list[av.AudioFrame]:
        """What the current resampler still holds."""
        if self._resampler is None:
            return []
        held = [frame for frame in self._resampler.resample(None) if frame is not None]
        self._resampler = self._input = None
        return held


@dataclass
class StageTimes:
    """Seconds each stage of one video was busy, and the wall time of the whole.

    The stages overlap (decoding and encoding run on threads beside the transform), so the busy
    times add up to more than the wall time when the overlap pays. `restyle_video` fills decode,
    transform, encode and wall; a transform may fill in its own parts (inference, flow, blend).
    """

    decode: float = 0.0
    transform: float = 0.0
    inference: float = 0.0
    flow: float = 0.0
    blend: float = 0.0
    encode: float = 0.0
    wall: float = 0.0
    frames: int = 0

    def summary(self) -> str:
        stages = ("decode", "inference", "flow", "blend", "encode", "wall")
        return ", ".join(f"{name} {getattr(self, name):.2f} s" for name in stages)


# Batches the decoder may read ahead of the transform, and the transform ahead of the encoder:
# enough to keep each stage busy, little enough that memory stays flat at any length.
_QUEUED_BATCHES = 2
_END = object()


class _Stopped(Exception):
    """Another stage failed or the job was cancelled: this stage stops quietly."""


class Deinterlacer:
    """Interlaced video (DVDs, camcorders, broadcast) as whole pictures, as players show it:
    FFmpeg's bwdif, one picture per frame (the frame count and times stay the source's), only
    on frames flagged interlaced. Frames come out one behind: the filter looks ahead a field."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self.time_base: Fraction = stream.time_base or Fraction(1, 90_000)
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(template=stream)
        bwdif = self.graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
        source.link_to(bwdif)
        bwdif.link_to(self.graph.add("buffersink"))
        self.graph.configure()

    def push(self, frames: list[av.VideoFrame] | None) -> Iterator[av.VideoFrame]:
        """Feed decoded frames (None at the end, to flush); the pictures ready so far."""
        for frame in [None] if frames is None else frames:
            self.graph.vpush(frame)
            while True:
                try:
                    picture = self.graph.vpull()
                except (BlockingIOError, av.error.EOFError):
                    break
                # bwdif halves the clock (for its field-rate mode); back to the stream's.
                ratio = (picture.time_base or self.time_base) / self.time_base
                if picture.pts is not None:
                    picture.pts = round(picture.pts * ratio)
                picture.duration = round(picture.duration * ratio)
                picture.time_base = self.time_base
                yield picture


class _Pipeline:
    """Decode -> transform -> encode as three threads' worth of work joined by bounded queues.

    The transform runs on the calling thread; decoding (demux, decode, turn upright, resize,
    retime) and encoding (H.264 and the audio) each run on a thread of their own, so on a
    multi-core machine they go on while the style network runs. The output container is only
    ever touched by the encoding thread.
    """

    def __init__(
        self,
        source,
        encoder: _Encoder,
        size,
        first: av.VideoFrame,
        options: TranscodeOptions,
    ) -> None:
        """`size` is the output's, set by the video's `first` frame as shown."""
        self.source, self.encoder, self.size, self.options = source, encoder, size, options
        self.turn = orientation(first)  # the video's display matrix, read once
        self.first_stored = (first.width, first.height)
        self.deinterlace = first.interlaced_frame
        self.to_transform: queue.Queue = queue.Queue(maxsize=_QUEUED_BATCHES)
        self.to_encode: queue.Queue = queue.Queue(maxsize=_QUEUED_BATCHES)
        self.failed = threading.Event()
        self.errors: list[BaseException] = []
        self.times = StageTimes()
        # Frames an edit list hides (a cut made without re-encoding keeps the packets from the
        # keyframe before it): counted in the header, decoded as references, never shown.
        self.hidden_frames = 0

    def _put(self, target: queue.Queue, item: object) -> None:
        while True:
            if self.failed.is_set():
                raise _Stopped
            with suppress(queue.Full):
                target.put(item, timeout=0.1)
                return

    def _get(self, source: queue.Queue) -> Any:
        while True:
            if self.failed.is_set():
                raise _Stopped
            with suppress(queue.Empty):
                return source.get(timeout=0.1)

    def _guarded(self, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except _Stopped:
                pass
            except BaseException as error:  # handed to the calling thread, which re-raises it
                self.errors.append(error)
                self.failed.set()

        return run

    def decode(self) -> None:
        """Frames in display order with their source times, in batches; audio packets as read."""
        batch: list[tuple[np.ndarray, int, int]] = []
        items = self._decoded()
        while True:
            started = time.perf_counter()
            item: Any = next(items, _END)
            self.times.decode += time.perf_counter() - started
            if item is _END:
                break
            if isinstance(item, av.Packet):
                self._put(self.to_encode, item)
                continue
            batch.append(item)
            if len(batch) >= self.options.batch_size:
                self._put(self.to_transform, batch)
                batch = []
        if batch:
            self._put(self.to_transform, batch)
        self._put(self.to_transform, _END)

    def _decoded(self) -> Iterator[av.Packet | tuple[np.ndarray, int, int]]:
        in_video, encoder = self.source.streams.video[0], self.encoder
        step = round(1 / (Fraction(in_video.average_rate or 25) * encoder.time_base))
        timeline = Timeline(step)
        fields = Deinterlacer(in_video) if self.deinterlace else None
        streams = [in_video] + ([encoder.in_audio] if encoder.in_audio is not None else [])
        # Formats whose clock may jump (MPEG-TS, MPEG-PS), as FFmpeg marks them.
        jumps = None
        if self.source.format.flags & av.format.Flags.ts_discont.value:
            jumps = ClockJumps({s.index: _nominal_packet_duration(s) for s in streams})
        for packet in self._mended(demuxed(self.source, *streams), jumps):
            if packet.stream.type == "audio":
                yield packet
                continue
            if packet.is_discard and packet.size:
                self.hidden_frames += 1
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it as players do, keep the rest
            for frame in fields.push(decoded) if fields else decoded:
                yield from timeline.push(self._shown(frame), frame.pts, frame.duration)
        for frame in fields.push(None) if fields else []:
            yield from timeline.push(self._shown(frame), frame.pts, frame.duration)
        yield from timeline.drain()

    @staticmethod
    def _mended(packets: Iterator[av.Packet], jumps: ClockJumps | None) -> Iterator[av.Packet]:
        if jumps is None:
            yield from packets
            return
        for packet in packets:
            yield from jumps.mend(packet)
        yield from jumps.held()

    def _shown(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame at the output size, set by the first frame; a later frame stored at another
        size is fitted inside it, not stretched."""
        if (frame.width, frame.height) == self.first_stored:
            return displayed(frame, self.size, self.turn)
        sample_aspect = self.source.streams.video[0].sample_aspect_ratio
        return fitted(frame, self.size, sample_aspect, self.turn)

    def encode(self) -> None:
        while (item := self._get(self.to_encode)) is not _END:
            if isinstance(item, av.Packet):
                started = time.perf_counter()
                self.encoder.write_audio(item)
            else:
                frames, stamps = item
                if isinstance(frames, Future):
                    frames = frames.result()  # waiting is not encoding: the clock starts after
                started = time.perf_counter()
                self.encoder.write_frames(frames, stamps)
            self.times.encode += time.perf_counter() - started


def restyle_video(
    src: Path,
    dst: Path,
    transform: FrameBatchFn,
    options: TranscodeOptions,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    times: StageTimes | None = None,
) -> int:
    """Write `transform` applied to every frame of `src` to `dst`; returns the frame count.

    The output appears at `dst` only when complete (written beside it, then renamed). `times`,
    when given, is filled with the seconds each stage was busy.
    """
    partial = dst.with_name(f".{dst.name}.partial")
    try:
        try:
            source = open_video(src)
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"the file could not be opened as a video ({error})") from error
        with source:
            if not source.streams.video:
                raise VideoDecodeError("the file has no video stream")
            frames_done = _run(
                src, source, partial, transform, options, on_progress, should_stop, times
            )
        if frames_done == 0:
            raise VideoDecodeError("the file holds no decodable video frame")
        os.replace(partial, dst)
        return frames_done
    finally:
        with suppress(NotADirectoryError):  # a broken storage must not hide the first error
            partial.unlink(missing_ok=True)


def _shown_to_its_end(
    stream: av.video.stream.VideoStream, declared: int, encoder: _Encoder, fraction: float
) -> bool:
    """Whether the frames shown last `fraction` of the `declared` frames' time at the stream's
    rate. A capture that dropped frames does (its header counts each drop, an empty chunk, as a
    frame); a file whose frames stop half-way does not. (Not the stream's duration: for a cut
    AVI, FFmpeg measures that from what is left.)"""
    if not stream.average_rate:
        return False
    return encoder.shown_seconds >= declared / Fraction(stream.average_rate) * fraction


def _first_frame(path: Path) -> av.VideoFrame | None:
    """The first decodable frame, for the displayed size (rotation comes with decoded frames)."""
    with open_video(path) as source:
        return next(decodable_frames(source), None)


def _run(src, source, partial, transform, options, on_progress, should_stop, times) -> int:
    wall_started = time.perf_counter()
    in_video = source.streams.video[0]
    in_video.thread_type = "AUTO"
    first = _first_frame(src)
    if first is None:
        raise VideoDecodeError("the file holds no decodable video frame")
    size = output_size(*displayed_size(first, in_video.sample_aspect_ratio), options.max_side)
    # A browser's recording states no duration: its index counts the frames, for the progress.
    total = estimate_frame_count(in_video) or _indexed_frame_count(src)
    encoder = _Encoder(partial, source, size, options)
    pipeline = _Pipeline(source, encoder, size, first, options)
    if times is not None:
        pipeline.times = times
    threads = [
        threading.Thread(target=pipeline._guarded(work), name=f"transcode-{name}", daemon=True)
        for name, work in (("decode", pipeline.decode), ("encode", pipeline.encode))
    ]
    done = 0
    try:
        for thread in threads:
            thread.start()
        try:
            while (batch := pipeline._get(pipeline.to_transform)) is not _END:
                if should_stop and should_stop():
                    raise TranscodeCancelled("the job was cancelled")
                frames = [frame for frame, _, _ in batch]
                started = time.perf_counter()
                outputs = transform(frames)
                pipeline.times.transform += time.perf_counter() - started
                pipeline._put(pipeline.to_encode, (outputs, [(pts, d) for _, pts, d in batch]))
                done += len(batch)
                if on_progress:
                    on_progress(done, max(total, done))
            pipeline._put(pipeline.to_encode, _END)
        except _Stopped:
            pass  # a stage's own error is raised below
        except BaseException:
            pipeline.failed.set()
            raise
        finally:
            for thread in threads:
                thread.join()
        if pipeline.errors:
            raise pipeline.errors[0]
    finally:
        pipeline.failed.set()
        encoder.close()
    pipeline.times.wall += time.perf_counter() - wall_started
    pipeline.times.frames += done
    declared = int(in_video.frames or 0) - pipeline.hidden_frames
    fraction = options.min_declared_fraction
    if (
        declared > 0
        and done < declared * fraction
        and not _shown_to_its_end(in_video, declared, encoder, fraction)
    ):
        raise VideoDecodeError(
            f"the video breaks off after frame {done} of the {declared} its header declares; "
            "the file is truncated or damaged"
        )
    return done
