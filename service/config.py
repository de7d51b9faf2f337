"""Service settings: environment variables prefixed `ANOMALY_` (or a `.env` file), built on first use.

`get_settings()` is cached and never runs at import, so tests and `anomaly serve` can set the
environment (or pass a `Settings` to `create_app`) before anything reads it.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANOMALY_", env_file=".env", extra="ignore")

    model: str = Field("", description="bundle folder, runs:/<id>/model or models:/<name>@<alias>")
    api_key: SecretStr | None = Field(None, description="when set, every route but /healthz and /readyz needs it")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes, each with its own model and batcher")
    backend: str = Field("torch", description='"torch" or "onnxruntime" (see anomaly export)')
    device: str | None = Field(None, description="torch device; default cuda when present, else cpu")
    max_batch_size: int = Field(16, ge=1, description="images per micro-batch")
    max_wait_ms: float = Field(5.0, ge=0, description="longest a batch waits for requests already being decoded")
    max_request_bytes: int = Field(32 * 2**20, ge=1, description="request body limit (413 above it)")
    max_pixels: int = Field(16_000_000, ge=1, description="width * height limit per image (decompression bombs)")
    max_files: int = Field(32, ge=1, description="images per /v1/predict request")
    max_request_pixels: int = Field(64_000_000, ge=1, description="width * height summed over a request's images, "
                                    "read from their headers before decoding (each pixel becomes C float32)")
    reload_interval_s: float = Field(0.0, ge=0, description="poll the model URI for a new version; 0 disables")
    warmup: bool = Field(True, description="run one batch before /readyz reports ready")


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once."""
    return Settings()
