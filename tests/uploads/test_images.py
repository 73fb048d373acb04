"""check_image and stored_image_path."""

from __future__ import annotations

import io
import os
import resource
from pathlib import Path

import pytest
from PIL import Image

from app.uploads.images import UploadProblem, check_image, format_size, stored_image_path
from tests.uploads.helpers import image_bytes, png_claiming_size


def write(tmp_path: Path, data: bytes, name: str = "image") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("fmt", "media"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WEBP")])
def test_check_image_supported_formats(tmp_path: Path, fmt: str, media: str) -> None:
    path = write(tmp_path, image_bytes((12, 7), fmt=fmt))
    assert check_image(path, "x", 1000) == (media, 12, 7)


def test_check_image_header_bomb(tmp_path: Path) -> None:
    """A 1 x 1 PNG that claims 100000 x 100000 would need 30 GB to decode."""
    path = write(tmp_path, png_claiming_size(100_000, 100_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "bomb.png", 40_000_000)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024
    assert "'bomb.png' is 10,000,000,000 pixels" in str(caught.value)
    assert "over the 40,000,000 pixel limit (REALUNIFY_MAX_IMAGE_PIXELS)" in str(caught.value)


def test_check_image_over_configured_limit(tmp_path: Path) -> None:
    path = write(tmp_path, png_claiming_size(8000, 6000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "big.png", 40_000_000)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    assert "'big.png' is 8000 x 6000 pixels, over the 40,000,000 pixel limit" in str(caught.value)
    assert caught.value.limit == "REALUNIFY_MAX_IMAGE_PIXELS"


def test_check_image_pillow_warning_size(tmp_path: Path) -> None:
    path = write(tmp_path, png_claiming_size(10_000, 10_000))
    with pytest.warns(Warning), pytest.raises(UploadProblem) as caught:
        check_image(path, "warned.png", 40_000_000)
    assert "10000 x 10000 pixels" in str(caught.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_check_image_truncated(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    # Noise does not compress, so cutting the file removes pixel data.
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, format=fmt)
    data = buffer.getvalue()
    path = write(tmp_path, data[: len(data) // 2])
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "cut", 1_000_000)
    assert "'cut' is" in str(caught.value)
    assert caught.value.member == "cut"


def test_check_image_damaged_png_chunk(tmp_path: Path) -> None:
    data = bytearray(image_bytes((16, 16)))
    idat = data.find(b"IDAT")
    data[idat + 6] ^= 0xFF
    path = write(tmp_path, bytes(data))
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "crc.png", 1_000_000)
    assert "'crc.png' is a damaged or truncated PNG file" in str(caught.value)


def test_check_image_names_other_format(tmp_path: Path) -> None:
    path = write(tmp_path, image_bytes(fmt="BMP"))
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "a.bmp", 1_000_000)
    assert "'a.bmp' is not a PNG, JPEG or WebP image but a BMP image" in str(caught.value)


def test_check_image_text_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(UploadProblem) as caught:
        check_image(path, "a.svg", 1_000_000)
    assert "'a.svg' is not a PNG, JPEG or WebP image;" in str(caught.value)


def test_stored_image_path_layout(tmp_path: Path) -> None:
    sha = "ab" + "0" * 62
    assert stored_image_path(tmp_path, sha, "image/webp") == tmp_path / "images/ab" / f"{sha}.webp"
    with pytest.raises(ValueError, match="SHA-256"):
        stored_image_path(tmp_path, "../../etc/passwd", "image/png")
    with pytest.raises(ValueError, match="media type"):
        stored_image_path(tmp_path, sha, "image/gif")


def test_format_size() -> None:
    assert format_size(8 * 1024**3) == "8 GiB"
    assert format_size(int(9.1 * 1024**3)) == "9.1 GiB"
    assert format_size(100) == "100 bytes"
