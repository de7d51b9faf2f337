"""Service settings: environment variables prefixed `ANOMALY_` (or a `.env` file), built on first use.

`get_settings()` is cached and never runs at import, so tests and `anomaly serve` can set the
environment (or pass a `Settings` to `create_app`) before anything reads it.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# what one decoded pixel in flight costs at most: float32 image and map, mask, region labels, overlay
# (13-21 bytes measured with heatmap=png, 4 Mpx images, tests/service/test_load_shedding.py)
BYTES_PER_PIXEL_IN_FLIGHT = 25


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANOMALY_", env_file=".env", extra="ignore")

    model: str = Field("", description="bundle folder, runs:/<id>/model or models:/<name>@<alias>")
    api_key: SecretStr | None = Field(None, description="when set, every route but /healthz, /readyz, / and the docs "
                                     "needs it, checked before the body is read")
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
    max_pixels_in_flight: int = Field(96_000_000, ge=1, description="width * height of the images being "
                                      "decoded, scored or rendered by all requests together; past it 503 with "
                                      "Retry-After (96 Mpx * 25 bytes: 2.4 GB beside a 0.6-0.9 GB process)")
    header_timeout_s: float = Field(10.0, gt=0, description="a request's headers must be complete within this "
                                    "many seconds of the connection opening or the request's first byte, else "
                                    "408 and the connection is closed (service/slow_headers.py)")
    body_timeout_s: float = Field(60.0, gt=0, description="a request body must arrive within this many seconds "
                                  "of its headers, else 408 and the connection is closed")
    body_idle_timeout_s: float = Field(10.0, gt=0, description="longest silence while a body is arriving (408)")
    reload_interval_s: float = Field(0.0, ge=0, description="poll the model URI for a new version; 0 disables")
    warmup: bool = Field(True, description="run one batch before serving; a failure stops startup")

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not key.get_secret_value().strip():
            raise ValueError("set but blank, which would leave every route open: set a real key, or unset "
                             "the variable to serve without one")
        return key

    @model_validator(mode="after")
    def _one_request_fits_the_budget(self) -> Settings:
        if self.max_request_pixels > self.max_pixels_in_flight:
            raise ValueError(f"ANOMALY_MAX_REQUEST_PIXELS ({self.max_request_pixels}) is above "
                             f"ANOMALY_MAX_PIXELS_IN_FLIGHT ({self.max_pixels_in_flight}), so the largest "
                             "allowed request could never be served: lower the first or raise the second")
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once."""
    return Settings()


def describe(error: ValidationError) -> str:
    """Invalid settings as one line: `ANOMALY_API_KEY: set but blank, ...; ...`."""
    return "; ".join(("ANOMALY_" + "_".join(map(str, e["loc"])).upper() + ": " if e["loc"] else "")
                     + e["msg"].removeprefix("Value error, ") for e in error.errors())
