"""README's two commands, in that order, in the same checkout: command 1's training leaves its store,
bundle and overlays in the checkout, and the tests that look at the checkout still pass after it."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    """The commands of README's first code block, comments dropped."""
    block = ROOT.joinpath("README.md").read_text().split("```")[1]
    return [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.split("#")[0].strip()]


def test_readme_opens_with_the_setup_and_demo_then_the_test_command():
    first, second = readme_commands()
    assert first.startswith("python3 -m venv .venv") and first.endswith("anomaly train")
    assert second == "bash .ci/run"


def test_the_suite_still_passes_after_command_1_trained_in_the_same_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # command 1 runs as a user's would
    training = shlex.split(readme_commands()[0].split("&&")[-1])  # `anomaly train`, one epoch here
    demo = subprocess.run([sys.executable, "-m", "anomaly", *training[1:], "--epochs", "1"], cwd=checkout, env=env,
                          check=True, capture_output=True, text=True, timeout=600).stdout
    assert "The demo: draem on the bundled MTD sample" in " ".join(demo.split())
    assert "The model flagged" in demo and "Image AUROC" in demo and "Pixel AUROC" in demo  # in plain words
    assert (checkout / "mlflow.db").is_file() and (checkout / "runs" / "latest" / "config.json").is_file()
    # the tests that look at the checkout itself (its store, its docs), run from it
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/tracking/test_runs_and_registry.py", "tests/test_docs.py"],
                           cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout[-3000:]
