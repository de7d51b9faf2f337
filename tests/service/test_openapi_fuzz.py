"""A bounded schemathesis run (its CLI) against the live server's /openapi.json: no failures.

Every check runs except `positive_data_acceptance`: the schema says "binary" for an image, and random
bytes are schema-valid but not images, so the service rightly refuses them with a 4xx.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_schemathesis_finds_no_failures(server, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    command = [str(cli), "run", f"{server.url}/openapi.json", "--checks", "all",
               "--exclude-checks", "positive_data_acceptance", "--max-examples", "25", "--workers", "2",
               "--generation-deterministic", "--max-response-time", "10",
               "--no-color"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "Tested: 7" in result.stdout
