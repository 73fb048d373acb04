"""Stage the generated images of an upload: one zip archive, or separate image files.

Every check runs while the files sit in the caller's staging folder, and nothing reaches storage
until ``commit_images`` is called. Members are streamed to numbered files directly inside the
staging folder, so no name from the upload is ever used as a file system path.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.uploads.images import (
    IMAGE_FORMATS,
    StagedImage,
    StagedImages,
    UploadLimits,
    UploadProblem,
    check_image,
    format_size,
)

RESULT_FILE_SUFFIXES = (".json", ".jsonl")
# Metadata that macOS and Windows add to archives and folders; skipped, not rejected.
IGNORED_BASENAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
IGNORED_ROOTS = {"__MACOSX"}
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")
# Errors that zipfile and its decompressors raise for damaged member data (Python 3.11).
_MEMBER_DATA_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError)

_LIMIT_MEMBERS = "REALUNIFY_MAX_ARCHIVE_MEMBERS"
_LIMIT_UNPACKED = "REALUNIFY_MAX_UNPACKED_BYTES"
_LIMIT_ARCHIVE = "REALUNIFY_MAX_ARCHIVE_BYTES"
_LIMIT_FILES = "REALUNIFY_MAX_IMAGE_FILES"


@dataclass(frozen=True)
class _Entry:
    """A file of the upload that will be staged: a zip member or a separate file."""

    original: str  # the name as uploaded, for messages
    parts: tuple[str, ...]  # the normalised path, split on "/"
    declared_size: int
    open: Callable[[], IO[bytes]]


def stage_zip(
    zip_path: Path, original_name: str, staging_dir: Path, limits: UploadLimits
) -> StagedImages:
    """Check a zip of generated images and extract it into ``staging_dir``.

    Raises UploadProblem before anything is extracted for archives that are damaged or over a
    limit, and for members that are unsafe (absolute, with ``..``, links, special files) or
    encrypted. Raises it during extraction for members whose data is damaged or larger than
    declared, and for members that are not PNG, JPEG or WebP images, except ``.json`` and
    ``.jsonl`` members, which are staged as result files.
    """
    archive_size = zip_path.stat().st_size
    if archive_size > limits.max_archive_bytes:
        raise UploadProblem(
            f"{original_name} is {format_size(archive_size)}, over the "
            f"{format_size(limits.max_archive_bytes)} limit ({_LIMIT_ARCHIVE}); save the "
            "images in a compressed format (PNG or WebP) or at a smaller size, or ask the operator "
            "to raise the limit",
            limit=_LIMIT_ARCHIVE,
            status_code=413,
        )
    # The central directory is read into memory by zipfile, so its declared length is checked
    # first from the end record.
    declared_count = _declared_member_count(zip_path)
    if declared_count is not None:
        _check_member_count(original_name, declared_count, limits)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error) as error:
        raise _damaged_archive(original_name, None, error) from None
    with archive:
        infos = archive.infolist()
        _check_member_count(original_name, len(infos), limits)
        entries: list[_Entry] = []
        ignored: list[str] = []
        for info in infos:
            parts = _check_member(info)
            if parts is None or _is_ignored(parts):
                ignored.append(info.filename)
                continue
            entries.append(
                _Entry(info.filename, parts, info.file_size, _member_opener(archive, info))
            )
        return _stage_entries(
            entries, ignored, staging_dir, limits, original_name, damaged_errors=True
        )


def stage_files(
    files: Sequence[tuple[str, Path]], staging_dir: Path, limits: UploadLimits
) -> StagedImages:
    """Check separately uploaded files and copy them into ``staging_dir``.

    ``files`` are (file name as uploaded, path of the received file) pairs. The names follow the
    rules of zip member names, and the same image checks apply.
    """
    if len(files) > limits.max_image_files:
        raise UploadProblem(
            f"the upload has {len(files)} files, over the {limits.max_image_files} file limit "
            f"({_LIMIT_FILES}); upload the images as one .zip archive instead",
            limit=_LIMIT_FILES,
            status_code=413,
        )
    entries: list[_Entry] = []
    ignored: list[str] = []
    for original, path in files:
        parts = _normalise_name(original, "file")
        if not parts:
            raise UploadProblem(f"a file has an empty name ({original!r}); name the file")
        if _is_ignored(parts):
            ignored.append(original)
            continue
        entries.append(_Entry(original, parts, path.stat().st_size, _file_opener(path)))
    return _stage_entries(entries, ignored, staging_dir, limits, None, damaged_errors=False)


def _stage_entries(
    entries: list[_Entry],
    ignored: list[str],
    staging_dir: Path,
    limits: UploadLimits,
    archive_name: str | None,
    *,
    damaged_errors: bool,
) -> StagedImages:
    kind = "member" if archive_name else "file"
    total = sum(entry.declared_size for entry in entries)
    if total > limits.max_unpacked_bytes:
        subject = f"the archive {archive_name} unpacks" if archive_name else "the files add up"
        raise UploadProblem(
            f"{subject} to {format_size(total)}, over the "
            f"{format_size(limits.max_unpacked_bytes)} limit ({_LIMIT_UNPACKED}); save the "
            "images at a smaller size, or ask the operator to raise the limit",
            limit=_LIMIT_UNPACKED,
            status_code=413,
        )
    names = _normalised_names(entries, kind)
    stripped_root = _single_root(entries)
    staged = StagedImages(ignored=ignored, stripped_root=stripped_root)

    staging_dir.mkdir(parents=True, exist_ok=True)
    root = staging_dir.resolve()
    for number, entry in enumerate(entries):
        name = names[number] if stripped_root is None else "/".join(entry.parts[1:])
        target = (root / f"{number:06d}.upload").resolve()
        if target.parent != root:
            raise RuntimeError(f"staging path {target} is outside {root}")
        size, sha256 = _copy_entry(entry, target, kind, archive_name, damaged_errors)
        if name.lower().endswith(RESULT_FILE_SUFFIXES):
            staged.result_files[name] = target
            continue
        try:
            image_format, width, height = check_image(
                target, entry.original, limits.max_image_pixels
            )
        except UploadProblem as problem:
            raise UploadProblem(
                f"{kind} {problem.message}",
                member=problem.member,
                limit=problem.limit,
                status_code=problem.status_code,
            ) from None
        staged.images[name] = StagedImage(
            name=name,
            sha256=sha256,
            size=size,
            media_type=IMAGE_FORMATS[image_format],
            width=width,
            height=height,
            staged_path=target,
        )
    if not staged.images:
        source = archive_name or "the upload"
        raise UploadProblem(
            f"{source} contains no PNG, JPEG or WebP images; add the generated images"
        )
    return staged


def _copy_entry(
    entry: _Entry, target: Path, kind: str, archive_name: str | None, damaged_errors: bool
) -> tuple[int, str]:
    """Stream one entry to ``target``; return its size and SHA-256.

    The copy stops as soon as more bytes arrive than the entry declared, because a zip's
    declared sizes can lie.
    """
    writer_errors: tuple[type[BaseException], ...] = _MEMBER_DATA_ERRORS if damaged_errors else ()
    with target.open("xb") as handle:
        writer = _LimitedWriter(handle, entry.declared_size)
        try:
            with entry.open() as source:
                # copyfileobj reads fixed-size chunks, so no member is held in memory whole.
                shutil.copyfileobj(source, writer)
        except _SizeExceeded:
            raise UploadProblem(
                f"{kind} '{entry.original}' unpacks to more than the "
                f"{format_size(entry.declared_size)} its header declares; the archive is "
                "damaged or built to exhaust memory, so re-create it with a standard zip tool",
                member=entry.original,
                limit=_LIMIT_UNPACKED,
                status_code=413,
            ) from None
        except writer_errors as error:
            raise _damaged_archive(archive_name or "", entry.original, error) from None
        except OSError as error:
            # bz2 reports damaged data as an OSError without errno; disk errors have one.
            if not damaged_errors or error.errno is not None:
                raise
            raise _damaged_archive(archive_name or "", entry.original, error) from None
    if writer.size != entry.declared_size:
        raise _damaged_archive(
            archive_name or "the upload",
            entry.original,
            ValueError(f"{writer.size} bytes instead of the declared {entry.declared_size}"),
        )
    return writer.size, writer.digest.hexdigest()


class _SizeExceeded(Exception):
    pass


class _LimitedWriter:
    """A file writer that computes SHA-256 and raises _SizeExceeded past ``max_bytes``."""

    def __init__(self, handle: IO[bytes], max_bytes: int) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise _SizeExceeded
        self.digest.update(data)
        return self.handle.write(data)


def _member_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        return archive.open(info)

    return open_member


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    def open_file() -> IO[bytes]:
        return path.open("rb")

    return open_file


def _check_member_count(archive_name: str, count: int, limits: UploadLimits) -> None:
    if count > limits.max_members:
        raise UploadProblem(
            f"{archive_name} has {count} entries, over the {limits.max_members} entry limit "
            f"({_LIMIT_MEMBERS}); leave out files that no item names, or ask the operator to "
            "raise the limit",
            limit=_LIMIT_MEMBERS,
            status_code=413,
        )


def _check_member(info: zipfile.ZipInfo) -> tuple[str, ...] | None:
    """Reject unsafe members; return the normalised path, or None for a directory."""
    name = info.filename
    # Unix permissions and file type sit in the high 16 bits of the external attributes.
    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode)

    if stat.S_ISLNK(mode):
        raise UploadProblem(
            f"member '{name}' is a symbolic link; put the image file itself in the archive "
            "(for example, zip without --symlinks)",
            member=name,
        )
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UploadProblem(
            f"member '{name}' is not a regular file (mode {mode:o}); put only image files "
            "in the archive",
            member=name,
        )

    parts = _normalise_name(name, "member")
    if info.is_dir() or file_type == stat.S_IFDIR:
        return None

    if not parts:
        raise UploadProblem(
            f"member {name!r} has an empty name; re-create the archive", member=name
        )
    if info.flag_bits & 0x1:
        raise UploadProblem(
            f"member '{name}' is encrypted; re-create the archive without a password",
            member=name,
        )
    if info.compress_type not in SUPPORTED_COMPRESSION:
        methods = ", ".join(SUPPORTED_COMPRESSION.values())
        raise UploadProblem(
            f"member '{name}' uses zip compression method {info.compress_type}, which is not "
            f"supported; re-create the archive with {methods}",
            member=name,
        )
    return parts


def _normalise_name(name: str, kind: str) -> tuple[str, ...]:
    """Split an uploaded path into its parts; raise UploadProblem for paths that leave it."""
    where = "the archive" if kind == "member" else "the upload"
    if name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name):
        raise UploadProblem(
            f"{kind} '{name}' is an absolute path; give paths relative to {where}'s top folder",
            member=name,
        )
    text = unicodedata.normalize("NFC", name.replace("\\", "/"))
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UploadProblem(
            f"{kind} '{name}' leaves {where}; remove the path's '..' parts",
            member=name,
        )
    return parts


def _is_ignored(parts: tuple[str, ...]) -> bool:
    basename = parts[-1]
    return (
        parts[0] in IGNORED_ROOTS
        or basename in IGNORED_BASENAMES
        # AppleDouble files ("._name") hold macOS metadata for the file "name".
        or basename.startswith("._")
    )


def _normalised_names(entries: list[_Entry], kind: str) -> list[str]:
    """Return each entry's normalised name; raise UploadProblem for duplicates."""
    names: list[str] = []
    first_of: dict[str, str] = {}
    for entry in entries:
        name = "/".join(entry.parts)
        if name in first_of:
            raise UploadProblem(
                f"{kind} '{entry.original}' and {kind} '{first_of[name]}' both have the name "
                f"'{name}'; rename or remove one of them",
                member=entry.original,
            )
        first_of[name] = entry.original
        names.append(name)
    return names


def _single_root(entries: list[_Entry]) -> str | None:
    """Return the top-level folder that contains every entry, if there is exactly one."""
    roots = {entry.parts[0] for entry in entries}
    if len(roots) == 1 and all(len(entry.parts) > 1 for entry in entries):
        return roots.pop()
    return None


def _damaged_archive(archive_name: str, member: str | None, error: BaseException) -> UploadProblem:
    if member is None:
        message = (
            f"{archive_name} is truncated or not a zip archive ({error}); upload the complete "
            ".zip file again"
        )
    elif archive_name:
        message = (
            f"{archive_name} is truncated or damaged at member '{member}' ({error}); upload "
            "the complete .zip file again"
        )
    else:
        message = f"file '{member}' is incomplete ({error}); upload it again"
    return UploadProblem(message, member=member)


def _declared_member_count(zip_path: Path) -> int | None:
    """Read the entry count from the zip's end record, or None when it cannot be found.

    zipfile validates the archive itself afterwards; this only rejects a huge central
    directory before zipfile loads it.
    """
    end_record = b"PK\x05\x06"
    with zip_path.open("rb") as handle:
        size = handle.seek(0, 2)
        # The end record is 22 bytes, followed by a comment of at most 65535 bytes.
        start = max(0, size - (22 + 65535))
        handle.seek(start)
        tail = handle.read()
        position = tail.rfind(end_record)
        if position < 0 or len(tail) - position < 22:
            return None
        (count,) = struct.unpack("<H", tail[position + 10 : position + 12])
        if count != 0xFFFF:
            return int(count)
        # Zip64: a 20-byte locator precedes the end record and gives the zip64 end record's
        # offset, whose entry count is an 8-byte field at offset 32.
        locator = tail[position - 20 : position] if position >= 20 else b""
        if not locator.startswith(b"PK\x06\x07"):
            return None
        (offset,) = struct.unpack("<Q", locator[8:16])
        if offset + 56 > size:
            return None
        handle.seek(offset)
        record = handle.read(56)
        if not record.startswith(b"PK\x06\x06"):
            return None
        (count64,) = struct.unpack("<Q", record[32:40])
        return int(count64)
