"""Measure the server's resident memory while it receives a large UEG image upload.

The script builds a zip of noise PNG images (about 1 GiB by default, stored without compression)
and starts ``uvicorn app.main:app`` on 127.0.0.1 with a fresh SQLite data folder. It then uploads
the zip with a UEG_direct result file to ``POST /api/v1/submissions``. Meanwhile it samples VmRSS
and VmHWM from ``/proc/PID/status`` of the server process every 50 ms. The goal is a peak under
200 MB.

Run from the repository root:

    .venv/bin/python bench/upload_memory.py [--size-mib 1024] [--results bench/results-upload.md]

Linux only, because it reads /proc.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import ROOT, VENV_BIN, free_port, run_cli, wait_for_server
from PIL import Image

DEMO = ROOT / "demo" / "realunify-demo"
GOAL_BYTES = 200 * 1000 * 1000
SAMPLE_SECONDS = 0.05
UPLOAD_TIMEOUT = httpx.Timeout(900.0)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_\-]{20,}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="approximate zip size")
    parser.add_argument("--side", type=int, default=1024, help="width and height of each image")
    parser.add_argument("--distinct", type=int, default=8, help="different noise images to reuse")
    parser.add_argument("--port", type=int, default=0, help="server port (0: pick a free one)")
    parser.add_argument("--results", type=Path, help="write a Markdown report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def noise_png(side: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    # Noise does not compress, so each PNG is about side * side * 3 bytes.
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def build_zip(path: Path, size_bytes: int, side: int, distinct: int) -> list[str]:
    """Write the zip with ZIP_STORED members; return the member names in order."""
    images = [noise_png(side, seed) for seed in range(distinct)]
    names: list[str] = []
    written = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        while written < size_bytes:
            data = images[len(names) % distinct]
            name = f"bench/{len(names):05d}.png"
            archive.writestr(name, data)
            names.append(name)
            written += len(data)
    return names


def result_file(names: list[str]) -> bytes:
    """Return the demo UEG_direct file with a `generated_image` for every item."""
    items: list[dict[str, Any]] = json.loads((DEMO / "UEG_direct.json").read_text("utf-8"))
    for number, item in enumerate(items):
        item["generated_image"] = names[number % len(names)]
    return json.dumps(items).encode()


def read_status(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM of ``pid`` in bytes (the kernel reports kB, meaning KiB)."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


@dataclass
class Sampler:
    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            try:
                status = read_status(self.pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            self.samples.append(
                (time.monotonic() - start, status.get("VmRSS", 0), status.get("VmHWM", 0))
            )
            time.sleep(SAMPLE_SECONDS)

    @property
    def peak_rss(self) -> int:
        return max(rss for _, rss, _ in self.samples)

    @property
    def high_water(self) -> int:
        return max(hwm for _, _, hwm in self.samples)


def mib(count: int) -> str:
    return f"{count / 1024**2:.1f} MiB ({count / 1000**2:.1f} MB)"


def machine() -> str:
    model = "unknown CPU"
    lscpu = shutil.which("lscpu")
    if lscpu:
        output = subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout  # noqa: S603
        for line in output.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpus = os.cpu_count()
    return f"{model}, {cpus} CPUs (nproc), {memory / 1024**3:.0f} GiB RAM, {platform.platform()}"


def main() -> int:
    args = parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="realunify-bench-"))
    data_dir = workspace / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "REALUNIFY_DATA_DIR": str(data_dir),
        # Empty URLs select the SQLite database and broker under the data folder.
        "REALUNIFY_DATABASE_URL": "",
        "REALUNIFY_BROKER_URL": "",
        "REALUNIFY_ENVIRONMENT": "development",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"workspace: {workspace}")
        zip_path = workspace / "images.zip"
        started = time.monotonic()
        names = build_zip(zip_path, args.size_mib * 1024**2, args.side, args.distinct)
        zip_size = zip_path.stat().st_size
        print(
            f"built {zip_path.name}: {len(names)} PNG members, {mib(zip_size)}, "
            f"{time.monotonic() - started:.1f} s"
        )

        run_cli(env, "db", "upgrade")
        run_cli(env, "benchmark", "load", str(DEMO), "--demo")
        tokens = TOKEN_PATTERN.findall(
            run_cli(env, "users", "create", "bench@example.org", "--token")
        )
        if not tokens:
            raise SystemExit("`realunify-board users create --token` printed no token")
        token = tokens[-1]

        port = args.port or free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [str(VENV_BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=(workspace / "uvicorn.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_server(url, server)
        idle = read_status(server.pid)
        print(f"server pid {server.pid}, idle VmRSS {mib(idle['VmRSS'])}")

        sampler = Sampler(server.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        upload_started = time.monotonic()
        with zip_path.open("rb") as images, httpx.Client(timeout=UPLOAD_TIMEOUT) as client:
            response = client.post(
                f"{url}/api/v1/submissions",
                headers={"Authorization": f"Bearer {token}"},
                data={
                    "axis": "UEG",
                    "protocol": "direct",
                    "model_name": "Bench",
                    "model_kind": "unified",
                },
                files={
                    "predictions": ("UEG_direct.json", result_file(names), "application/json"),
                    "images": ("images.zip", images, "application/zip"),
                },
            )
        seconds = time.monotonic() - upload_started
        time.sleep(0.5)  # let the sampler see the memory after the response
        sampler.stop.set()
        thread.join()

        body = response.text[:600]
        print(f"POST /api/v1/submissions -> {response.status_code} in {seconds:.1f} s")
        print(f"response: {body}")
        print(f"samples: {len(sampler.samples)} every {SAMPLE_SECONDS * 1000:.0f} ms")
        print(f"peak VmRSS: {mib(sampler.peak_rss)}")
        print(f"VmHWM (process lifetime peak): {mib(sampler.high_water)}")
        verdict = "met" if sampler.high_water < GOAL_BYTES else "NOT met"
        print(f"goal under 200 MB: {verdict}")

        if args.results:
            write_results(
                args.results,
                zip_size=zip_size,
                members=len(names),
                side=args.side,
                distinct=args.distinct,
                referenced=min(len(names), len(json.loads(result_file(names)))),
                status=response.status_code,
                seconds=seconds,
                idle=idle["VmRSS"],
                peak=sampler.peak_rss,
                high_water=sampler.high_water,
                verdict=verdict,
                body=body,
                argv=sys.argv[1:],
            )
        return 0 if response.status_code < 300 else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)


def write_results(path: Path, **figures: Any) -> None:
    command = " ".join([".venv/bin/python bench/upload_memory.py", *figures["argv"]])
    text = f"""# UEG upload: server memory

- Command: `{command}`
- Date: {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {machine()}
- Upload: one zip of {figures["members"]} noise PNG members (ZIP_STORED),
  {mib(figures["zip_size"])}, plus the demo UEG_direct result file, streamed by httpx
  to `POST /api/v1/submissions` on 127.0.0.1 (one uvicorn process, SQLite data folder).
- Images: {figures["side"]} x {figures["side"]} RGB noise, {figures["distinct"]} distinct
  contents reused under different names. The result file names {figures["referenced"]} of
  them, and every member is still extracted, decoded and hashed.
- Response: HTTP {figures["status"]} after {figures["seconds"]:.1f} s

| measure | value |
| --- | --- |
| VmRSS before the upload | {mib(figures["idle"])} |
| peak VmRSS, sampled every 50 ms | {mib(figures["peak"])} |
| VmHWM (peak over the process's life) | {mib(figures["high_water"])} |
| goal: under 200 MB | {figures["verdict"]} |

Response body (first 600 characters):

```
{figures["body"]}
```
"""
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
