"""The FastAPI scoring service: `create_app()` builds it, `anomaly serve` runs it (see docs/service.md)."""
