"""Build images and zip archives, including deliberately broken ones, for the upload tests."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image

from app.uploads.images import UploadLimits

LIMITS = UploadLimits(
    max_archive_bytes=50 * 1024 * 1024,
    max_members=100,
    max_unpacked_bytes=50 * 1024 * 1024,
    max_image_pixels=40_000_000,
    max_image_files=50,
)


def image_bytes(
    size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A 1 x 1 PNG whose IHDR claims ``width`` x ``height``, with a valid chunk CRC."""
    data = bytearray(image_bytes((1, 1)))
    # The signature is 8 bytes; the IHDR chunk follows as length, type, 13 data bytes, CRC.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def build_zip(
    path: Path,
    members: list[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def patch_member_headers(
    path: Path, name: str, *, set_flags: int = 0, file_size: int | None = None
) -> None:
    """Rewrite fields of one member's local and central headers in place.

    zipfile cannot write an encrypted flag or a false uncompressed size, so the tests patch the
    bytes: flags are at offset 6 of the local header and 8 of the central header, and the
    uncompressed size at offsets 22 and 24.
    """
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0 and data[local + 30 : local + 30 + len(encoded)] != encoded:
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0 and data[central + 46 : central + 46 + len(encoded)] != encoded:
        central = data.find(b"PK\x01\x02", central + 4)
    assert local >= 0, name
    assert central >= 0, name
    for offset, flags_at, size_at in ((local, 6, 22), (central, 8, 24)):
        (flags,) = struct.unpack_from("<H", data, offset + flags_at)
        struct.pack_into("<H", data, offset + flags_at, flags | set_flags)
        if file_size is not None:
            struct.pack_into("<I", data, offset + size_at, file_size)
    path.write_bytes(bytes(data))


def files_outside(root: Path, *allowed: Path) -> list[Path]:
    """Files under ``root`` that are in none of the ``allowed`` files or folders."""
    found = []
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        if any(path == place or place in path.parents for place in allowed):
            continue
        found.append(path)
    return found
