"""Read an uploaded file into memory, stopping at the configured size limit."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import InvalidInput, PayloadTooLarge
from app.uploads.images import format_size

CHUNK_BYTES = 1024 * 1024


async def read_limited(upload: UploadFile | None, max_bytes: int, field: str) -> tuple[bytes, str]:
    """Return the file's bytes and name; raise PayloadTooLarge past ``max_bytes``."""
    if upload is None or not upload.filename:
        raise InvalidInput(f"{field}: choose a prediction file (.json or .jsonl)", field=field)
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"{field}: {upload.filename} is over the {format_size(max_bytes)} limit; "
                "remove unused fields or contact the maintainers",
                field=field,
            )
        chunks.append(chunk)
    return b"".join(chunks), upload.filename
