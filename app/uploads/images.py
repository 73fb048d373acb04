"""Check uploaded images with Pillow and keep them in content-addressed storage.

``check_image`` reads only the header before it compares the pixel count with the limit, so a
decompression bomb is rejected before Pillow allocates its pixels. ``StagedImages`` is the result
of staging an upload (see ``app.uploads.archive``), and ``commit_images`` moves its images to
``storage_dir/images/<sha[:2]>/<sha><ext>``.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
FORMAT_NAMES = "PNG, JPEG or WebP"

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Errors that Pillow's decoders raise for damaged or truncated data (Pillow 13.0).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


@dataclass(frozen=True)
class UploadLimits:
    """Limits for one upload of generated images; each maps to a ``REALUNIFY_`` setting."""

    max_archive_bytes: int  # size of the zip as uploaded (REALUNIFY_MAX_ARCHIVE_BYTES)
    max_members: int  # entries in the zip (REALUNIFY_MAX_ARCHIVE_MEMBERS)
    max_unpacked_bytes: int  # sum of uncompressed sizes (REALUNIFY_MAX_UNPACKED_BYTES)
    max_image_pixels: int  # width * height of one image (REALUNIFY_MAX_IMAGE_PIXELS)
    max_image_files: int  # separate files in one upload (REALUNIFY_MAX_IMAGE_FILES)


class UploadProblem(Exception):
    """A rejected upload: the message names the member, the limit and the fix.

    ``member`` is the entry or file name as uploaded, ``limit`` the setting that was exceeded
    (for example ``REALUNIFY_MAX_UNPACKED_BYTES``), and ``status_code`` is 413 for size limits
    and 422 for content problems.
    """

    def __init__(
        self,
        message: str,
        *,
        member: str | None = None,
        limit: str | None = None,
        status_code: int = 422,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.member = member
        self.limit = limit
        self.status_code = status_code


def format_size(count: int) -> str:
    """Format a byte count with binary units, for example ``9.1 GiB`` or ``8 GiB``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            text = f"{count / scale:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{count} bytes"


def check_image(path: Path, name: str, max_pixels: int) -> tuple[str, int, int]:
    """Check that ``path`` is a complete PNG, JPEG or WebP image; return (format, width, height).

    Raises UploadProblem for other content, damaged or truncated data, and images of more than
    ``max_pixels`` pixels. The pixel count comes from the header and is checked before any pixel
    data is decoded.
    """
    # Pillow's own bomb check (Image.MAX_IMAGE_PIXELS, about 89 million pixels by default) runs
    # inside Image.open: it warns above that size and raises DecompressionBombError above twice
    # that size. The check below is the one that applies when max_pixels is lower.
    # NOTE: a max_pixels above Image.MAX_IMAGE_PIXELS lets such images through with Pillow's
    # warning, and above twice that they are still rejected by Pillow.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False for uploads")
    formats = list(IMAGE_FORMATS)
    image_format = ""
    try:
        with Image.open(path, formats=formats) as image:
            image_format = image.format or ""
            width, height = image.size
            _check_pixels(name, width, height, max_pixels)
            image.verify()
        # verify() leaves the image unusable, so a second open decodes every pixel.
        with Image.open(path, formats=formats) as image:
            image.load()
    except UploadProblem:
        raise
    except Image.DecompressionBombError as error:
        raise _too_many_pixels(name, _bomb_size(error), max_pixels) from None
    except UnidentifiedImageError:
        raise UploadProblem(
            f"'{name}' is not a {FORMAT_NAMES} image{_describe_other_format(path)}; "
            "upload the generated images as PNG, JPEG or WebP files",
            member=name,
        ) from None
    except _DECODE_ERRORS as error:
        raise UploadProblem(
            f"'{name}' is a damaged or truncated {image_format or 'image'} file ({error}); "
            "save the image again and re-upload it",
            member=name,
        ) from None
    if image_format not in IMAGE_FORMATS:
        raise UploadProblem(
            f"'{name}' is a {image_format} image; upload PNG, JPEG or WebP files", member=name
        )
    return image_format, width, height


def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise UploadProblem(f"'{name}' has no pixels ({width} x {height})", member=name)
    if width * height > max_pixels:
        raise _too_many_pixels(name, f"{width} x {height} pixels", max_pixels)


def _too_many_pixels(name: str, size: str, max_pixels: int) -> UploadProblem:
    return UploadProblem(
        f"'{name}' is {size}, over the {max_pixels:,} pixel limit (REALUNIFY_MAX_IMAGE_PIXELS); "
        "resize the image",
        member=name,
        limit="REALUNIFY_MAX_IMAGE_PIXELS",
    )


def _bomb_size(error: Image.DecompressionBombError) -> str:
    """Return the pixel count from Pillow's DecompressionBombError message, when it has one."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow decodes"


def _describe_other_format(path: Path) -> str:
    """Name the format of a file that is not PNG, JPEG or WebP, when Pillow can tell."""
    try:
        with Image.open(path) as image:
            return f" but a {image.format} image" if image.format else ""
    except Exception:  # any failure only leaves the format unnamed in the message
        return ""


@dataclass(frozen=True)
class StagedImage:
    """One checked image waiting in the staging folder."""

    name: str  # normalised relative path inside the upload, e.g. "imgs/0001.png"
    sha256: str
    size: int
    media_type: str
    width: int
    height: int
    staged_path: Path  # gone after commit_images moved the file to storage


@dataclass
class StagedImages:
    """The checked content of one upload, before it is moved to storage."""

    images: dict[str, StagedImage] = field(default_factory=dict)  # by normalised name
    # .json and .jsonl members, by normalised name: a result file may travel inside the zip.
    result_files: dict[str, Path] = field(default_factory=dict)
    # Entries skipped on purpose, as named in the upload: __MACOSX/, .DS_Store, directories.
    ignored: list[str] = field(default_factory=list)
    # The single top-level folder that was removed from every name, if any.
    stripped_root: str | None = None

    def find(self, reference: str) -> StagedImage | None:
        """Find the image that a ``generated_image`` value names.

        The reference is normalised (backslashes, ``./``, leading ``/``), then tried as an
        exact name, then without the stripped root folder, then as a basename that only one
        image has. Returns None when no image or several images match.
        """
        name = normalise_reference(reference)
        if not name:
            return None
        if name in self.images:
            return self.images[name]
        if self.stripped_root and name.startswith(self.stripped_root + "/"):
            inner = name[len(self.stripped_root) + 1 :]
            if inner in self.images:
                return self.images[inner]
        basename = posixpath.basename(name)
        matches = [
            image for key, image in self.images.items() if posixpath.basename(key) == basename
        ]
        return matches[0] if len(matches) == 1 else None


def normalise_reference(reference: str) -> str:
    """Normalise an image path from a result file: ``/`` separators, no ``.`` or empty parts.

    Returns an empty string for paths with ``..`` parts, because no staged name has them.
    """
    text = unicodedata.normalize("NFC", reference.strip().replace("\\", "/"))
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        return ""
    return "/".join(parts)


def stored_image_path(storage_dir: Path, sha256: str, media_type: str) -> Path:
    """Return where an image with this SHA-256 and media type is kept in storage."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lower-case hex SHA-256 digest: {sha256!r}")
    try:
        extension = EXTENSIONS[media_type]
    except KeyError:
        raise ValueError(f"no stored image type for media type {media_type!r}") from None
    return storage_dir / "images" / sha256[:2] / f"{sha256}{extension}"


def commit_images(staged: StagedImages, storage_dir: Path) -> None:
    """Move the staged images into content-addressed storage.

    An image whose digest is already stored is left where it is, so calling this again, or
    with images stored before, changes nothing. Each file appears in storage by one rename, so
    readers never see a partly written image.
    """
    for image in staged.images.values():
        target = stored_image_path(storage_dir, image.sha256, image.media_type)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(image.staged_path, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            _copy_then_rename(image.staged_path, target)


def _copy_then_rename(source: Path, target: Path) -> None:
    """Copy across file systems into a temporary name next to ``target``, then rename."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with source.open("rb") as reader, temporary.open("xb") as writer:
            shutil.copyfileobj(reader, writer)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    source.unlink(missing_ok=True)
