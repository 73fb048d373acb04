"""``realunify-board submit``: upload a result file and its images, then wait for the scores."""

from __future__ import annotations

import json
import re
import tempfile
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

console = Console(stderr=True)
# Each read or write may wait this long; a large upload takes many of them.
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=30.0)
FILE_NAME = re.compile(r"(UEG|GEU)_(direct|step)", re.IGNORECASE)


class SubmitError(Exception):
    """A problem the user can fix; the message states how."""


class _ProgressReader:
    """A file wrapper that advances a progress bar as httpx reads it."""

    def __init__(self, handle: IO[bytes], progress: Progress, task: Any) -> None:
        self._handle = handle
        self._progress = progress
        self._task = task

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._progress.advance(self._task, len(chunk))
        return chunk


def guess_axis_protocol(path: Path) -> tuple[str | None, str | None]:
    match = FILE_NAME.search(path.name)
    if match is None:
        return None, None
    protocol = "stepwise" if match.group(2).lower() == "step" else "direct"
    return match.group(1).upper(), protocol


def collect_images(result_file: Path, images: Path | None, workdir: Path) -> Path | None:
    """Return a zip of the images: the given zip, a zip of the given folder, or of the files the
    result file names, relative to its folder."""
    if images is not None and images.is_file():
        if not zipfile.is_zipfile(images):
            raise SubmitError(f"--images {images}: not a zip archive; give a .zip or a folder")
        return images
    archive = workdir / "images.zip"
    if images is not None:
        if not images.is_dir():
            raise SubmitError(f"--images {images}: no such file or folder")
        files = [(path, path.relative_to(images).as_posix()) for path in sorted(images.rglob("*"))]
    else:
        items = (
            json.loads(result_file.read_text(encoding="utf-8"))
            if result_file.suffix == ".json"
            else [
                json.loads(line)
                for line in result_file.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        )
        names = {item.get("generated_image") for item in items if isinstance(item, dict)}
        files = [
            (result_file.parent / name, name)
            for name in sorted(n for n in names if isinstance(n, str))
            if (result_file.parent / name).is_file()
        ]
        if not files:
            raise SubmitError(
                "no image named by `generated_image` was found next to the result file; "
                "give --images FOLDER_OR_ZIP"
            )
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        for path, name in files:
            if path.is_file():
                bundle.write(path, name)
    return archive


def submit(
    server: str,
    token: str,
    result_file: Path,
    fields: dict[str, str],
    images: Path | None,
    *,
    dry_run: bool,
    wait: bool,
    timeout_seconds: float,
) -> int:
    """Upload and report; return the process exit code."""
    headers = {"Authorization": f"Bearer {token}"}
    url = server.rstrip("/") + "/api/v1/submissions" + ("/validate" if dry_run else "")
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        archive = (
            collect_images(result_file, images, Path(workdir)) if fields["axis"] == "UEG" else None
        )
        uploads = [("predictions", result_file)] + ([("images", archive)] if archive else [])
        total = sum(path.stat().st_size for _, path in uploads)
        progress = stack.enter_context(
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=console,
            )
        )
        task = progress.add_task("uploading", total=total)
        files: Any = [
            (
                field,
                (path.name, _ProgressReader(stack.enter_context(path.open("rb")), progress, task)),
            )
            for field, path in uploads
        ]
        try:
            response = httpx.post(
                url, headers=headers, data=fields, files=files, timeout=UPLOAD_TIMEOUT
            )
        except httpx.HTTPError as error:
            raise SubmitError(f"could not reach {server}: {error}") from None
    body = _json(response)
    if response.status_code >= 400:
        _print_problems(body)
        return 1
    report = body if dry_run else body.get("report", {})
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning['message']}")
    if dry_run:
        _print_problems({"report": report})
        console.print("valid" if report.get("valid") else "invalid")
        return 0 if report.get("valid") else 1
    console.print(f"submission {body['id']} queued: {server.rstrip('/')}{body['url']}")
    if not wait:
        return 0
    return _wait(server, body["id"], headers, timeout_seconds)


def _wait(server: str, submission_id: str, headers: dict[str, str], timeout_seconds: float) -> int:
    deadline = time.monotonic() + timeout_seconds
    url = f"{server.rstrip('/')}/api/v1/submissions/{submission_id}"
    with console.status("scoring"):
        while True:
            body = _json(httpx.get(url, headers=headers, timeout=30))
            if body.get("status") in ("scored", "failed"):
                break
            if time.monotonic() > deadline:
                console.print(
                    f"still {body.get('status')} after {timeout_seconds:.0f} s; check {url}"
                )
                return 2
            time.sleep(1)
    if body["status"] == "failed":
        console.print(f"[red]scoring failed:[/] {body.get('failure_reason')}")
        return 1
    table = Table(title=f"{body['model']['name']}: {body['axis']} {body['protocol']}")
    for column in ("task_type", "correct", "items", "judge errors", "accuracy %"):
        table.add_column(column)
    for key, score in sorted(body["scores"].items()):
        accuracy = "-" if score["accuracy"] is None else f"{score['accuracy']:.1f}"
        table.add_row(
            key, str(score["correct"]), str(score["total"]), str(score["judge_errors"]), accuracy
        )
    Console().print(table)
    for axis, value in body["axis_scores"].items():
        print(f"{axis} score: {'undefined' if value is None else f'{value:.1f}'}")
    if body.get("judge"):
        judge = body["judge"]
        print(
            f"judge: {judge['model']} (prompt {judge['prompt_version']}), errors: {judge['errors']}"
        )
    return 0


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise SubmitError(f"the server sent HTTP {response.status_code} without JSON") from None
    return body if isinstance(body, dict) else {"detail": body}


def _print_problems(body: dict[str, Any]) -> None:
    if "detail" in body:
        console.print(f"[red]error:[/] {body['detail']}")
    report = body.get("report") or {}
    for problem in report.get("errors", []):
        where = " ".join(part for part in (problem.get("item"), problem.get("field")) if part)
        console.print(f"  - {where + ': ' if where else ''}{problem['message']}")
