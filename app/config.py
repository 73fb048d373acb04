"""Settings read from the environment (prefix ``REALUNIFY_``) or a ``.env`` file."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"
DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105


class Settings(BaseSettings):
    """Service configuration.

    The defaults run the embedded mode: a SQLite database and a SQLite-backed Celery broker under
    ``var/``, so no external service is needed. Production sets ``REALUNIFY_DATABASE_URL`` to
    PostgreSQL and ``REALUNIFY_BROKER_URL`` to Redis.
    """

    model_config = SettingsConfigDict(env_prefix="REALUNIFY_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    broker_url: str = ""
    task_queue: str = "realunify"
    secret_key: str = DEVELOPMENT_SECRET
    base_url: str = "http://127.0.0.1:8000"

    benchmark_name: str = "realunify"
    demo_benchmark_path: Path = PROJECT_ROOT / "demo" / "realunify-demo"
    demo_baselines_path: Path = PROJECT_ROOT / "demo" / "baselines"

    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # UEG uploads: a zip of generated images, or separate image files.
    max_archive_bytes: int = Field(default=4 * 1024**3, gt=0)
    max_archive_members: int = Field(default=20_000, gt=0)
    max_unpacked_bytes: int = Field(default=8 * 1024**3, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_image_files: int = Field(default=5_000, gt=0)
    # An upload that sends no bytes for this long gets HTTP 408.
    upload_idle_timeout_seconds: float = Field(default=60.0, gt=0)

    # The judge model for UEG: any OpenAI-compatible chat completions API with image input.
    # An empty base URL means the demo judge that `realunify-board run` starts on judge_port.
    judge_base_url: str = ""
    judge_model: str = "demo-shape-judge"
    judge_api_key: SecretStr = SecretStr("")
    judge_port: int = 8001
    judge_timeout_seconds: float = Field(default=60.0, gt=0)
    judge_concurrency: int = Field(default=16, gt=0)
    # Requests per second over all concurrent calls; 0 means no limit.
    judge_requests_per_second: float = Field(default=0.0, ge=0)
    judge_max_attempts: int = Field(default=5, gt=0)

    # Registered model endpoints: hosts or CIDR networks the workers may call although they are
    # private or loopback addresses, comma-separated (e.g. "127.0.0.1/32,models.internal").
    outbound_allowlist: str = ""
    # How long a worker's claim on a model run lasts without renewal; a dead worker's run is
    # resumed by another worker after this.
    model_run_lease_seconds: float = Field(default=60.0, gt=0)
    max_report_errors: int = Field(default=200, gt=0)
    # The leaderboard checks for new scores at most this often per process; 0 checks every time.
    leaderboard_cache_seconds: float = Field(default=1.0, ge=0)
    session_max_age_seconds: int = Field(default=14 * 24 * 3600, gt=0)
    task_max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'realunify.sqlite3'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"
        if self.environment == "development" and self.secret_key == DEVELOPMENT_SECRET:
            # Sessions and stored API keys need a real secret even in development, so the first
            # start writes a random one into the data folder and later starts reuse it.
            self.secret_key = _local_secret(self.data_dir)
        if self.environment == "production" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError(
                "REALUNIFY_SECRET_KEY is the development placeholder; set a random value of at "
                "least 32 characters in production (for example: openssl rand -hex 32)"
            )
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("REALUNIFY_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def judge_url(self) -> str:
        return self.judge_base_url or f"http://127.0.0.1:{self.judge_port}/v1"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _local_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    # Created readable by the owner only, and never overwritten once it exists.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the service created it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret)
    return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
