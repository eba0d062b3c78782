"""Container sniffing and file-name checks of uploads, without a server."""

from __future__ import annotations

import asyncio

import pytest

from service.video.upload import (
    FieldTooLong,
    FormField,
    ReceivedVideo,
    UnsupportedVideo,
    UploadLimits,
    UploadStalled,
    check_suffix,
    describe_content,
    describe_size,
    idle_limited,
    receive_video_upload,
    sniff_container,
)
from tests.utils.data import CLIPS, YOYO_CLIP
from tests.utils.media import image_bytes, random_bytes, wav_bytes


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
        (b"\x00\x00\x00\x20ftypisom", "mp4"),
        (b"\x00\x00\x00\x08wide\x00\x00", "mp4"),
        (b"\x00\x01\x00\x00moov", "mp4"),
        (b"\x00\x00\x01\xba\x44\x00", "mpeg-ps"),
        ((b"\x47" + bytes(187)) * 2, "mpeg-ts"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "matroska"),
        (b"\x1a\x45\xdf\xa3\x00", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"GET / HTTP/1.1\r\n", None),
        (b"", None),
    ],
)
def test_sniff_container(head: bytes, container: str | None) -> None:
    assert sniff_container(head) == container


def test_real_files_sniff_as_what_they_are() -> None:
    assert sniff_container(YOYO_CLIP.read_bytes()[:512]) == "avi"
    assert sniff_container((CLIPS / "bigbuckbunny.mp4").read_bytes()[:512]) == "mp4"
    assert sniff_container(wav_bytes()[:512]) is None
    assert sniff_container(image_bytes(".jpg")[:512]) is None
    assert sniff_container(random_bytes(512)) is None


def test_describe_content() -> None:
    assert describe_content(wav_bytes()[:512]) == "WAV audio"
    assert describe_content(image_bytes(".png")[:512]) == "a PNG image"
    assert describe_content(b"hello") == "text"
    assert describe_content(random_bytes(512)) == ""


@pytest.mark.parametrize(
    ("filename", "suffix"),
    [
        ("clip.AVI", ".avi"),
        ("a/b/c.mp4", ".mp4"),
        ("C:\\Users\\me\\x.MOV", ".mov"),
        ("x.mpg", ".mpg"),
    ],
)
def test_check_suffix_accepts_video_names(filename: str, suffix: str) -> None:
    assert check_suffix(filename) == suffix


@pytest.mark.parametrize("filename", ["clip.avi.txt", "clip", ".avi/evil", "x.flv", ""])
def test_check_suffix_refuses_other_names(filename: str) -> None:
    with pytest.raises(UnsupportedVideo, match="not accepted"):
        check_suffix(filename)


def test_describe_size() -> None:
    assert describe_size(200 * 2**20) == "200 MiB"
    assert describe_size(100_000) == "97.7 KiB"
    assert describe_size(512) == "512 bytes"


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """A form body; a file name starting with ';' is sent as the disposition's raw parameters."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename and filename.startswith(";"):
            disposition += filename
        elif filename:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


async def _receive(body: bytes, limits: UploadLimits) -> tuple[str, dict]:
    video = await _receive_video(body, limits)
    return video.container, video.fields


async def _receive_video(body: bytes, limits: UploadLimits) -> ReceivedVideo:
    async def chunks():
        yield body

    content_type = "multipart/form-data; boundary=b0undary"
    async with receive_video_upload(content_type, str(len(body)), chunks(), limits) as video:
        return video


@pytest.mark.parametrize(
    ("parameters", "filename"),
    [
        # Browsers and httpx escape a quote and line breaks in a name as the HTML standard says.
        ('; filename="Mum said %22go%22.avi"', 'Mum said "go".avi'),
        ('; filename="two%0D%0Alines.avi"', "two\r\nlines.avi"),
        # Other escapes are the name's own characters: nothing encodes them.
        ('; filename="100%25 fun.avi"', "100%25 fun.avi"),
        # curl escapes a quote with a backslash.
        ('; filename="Mum said \\"go\\".avi"', 'Mum said "go".avi'),
        # RFC 7578 allows the RFC 5987 form, which older urllib3 sends for names beyond ASCII;
        # it names the file even beside a plain fallback.
        ("; filename*=utf-8''T%C3%A4nzer%20am%20Strand.avi", "Tänzer am Strand.avi"),
        ("; filename=\"Tanzer.avi\"; filename*=UTF-8''T%C3%A4nzer.avi", "Tänzer.avi"),
        ("; filename*=iso-8859-1'de'T%E4nzer.avi", "Tänzer.avi"),
    ],
)
def test_the_upload_keeps_the_name_the_client_sent(
    tmp_path, parameters: str, filename: str
) -> None:
    body = _multipart([("file", parameters, YOYO_CLIP.read_bytes())])
    video = asyncio.run(_receive_video(body, UploadLimits(max_bytes=10**7, temp_dir=tmp_path)))
    assert video.filename == filename
    assert video.container == "avi"


def test_small_extra_fields_are_kept_in_memory(tmp_path) -> None:
    painting = image_bytes(".png")
    body = _multipart(
        [
            ("style", None, b" vangogh "),
            ("file", "clip.avi", YOYO_CLIP.read_bytes()),
            ("style_image", "me.png", painting),
            ("ignored", None, b"x" * 1000),
        ]
    )
    limits = UploadLimits(
        max_bytes=10**7, temp_dir=tmp_path, extra_fields={"style": 100, "style_image": 10**6}
    )
    container, fields = asyncio.run(_receive(body, limits))
    assert container == "avi"
    assert fields["style"].text() == "vangogh" and fields["style"].filename is None
    assert fields["style_image"] == FormField(painting, "me.png")
    assert set(fields) == {"style", "style_image"}


def test_an_extra_field_over_its_cap_is_refused(tmp_path) -> None:
    body = _multipart([("file", "clip.avi", YOYO_CLIP.read_bytes()), ("style", None, b"x" * 101)])
    limits = UploadLimits(max_bytes=10**7, temp_dir=tmp_path, extra_fields={"style": 100})
    with pytest.raises(FieldTooLong, match="^the field 'style' is larger than the limit of 100 "):
        asyncio.run(_receive(body, limits))
    assert not list(tmp_path.iterdir())  # the spooled video is removed too


def test_idle_limited_passes_chunks_on_and_stops_a_stalled_body() -> None:
    async def body(pause_s: float):
        yield b"first"
        await asyncio.sleep(pause_s)
        yield b"second"

    async def read(pause_s: float) -> list[bytes]:
        return [chunk async for chunk in idle_limited(body(pause_s), idle_s=0.2)]

    assert asyncio.run(read(0.05)) == [b"first", b"second"]
    with pytest.raises(UploadStalled, match=r"^no data arrived for 0\.2 s, so the upload was"):
        asyncio.run(read(5.0))
