"""Every verb, given a typical mistake, says so in one `error:` line naming it and exits 2 within seconds: no
traceback, no server left starting. Real `anomaly` processes, run a few at a time (most of each is importing torch)."""

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

MISTAKES = {  # case: (arguments with {bundle}, {busy} and {tmp} to fill in, what the error line must name)
    "train, data that does not exist": (["train", "--data", "{tmp}/nowhere", "--no-tracking", "--out", "{tmp}/b"],
                                        "nowhere"),
    "train, bad option value": (["train", "--image-size", "12xq", "--no-tracking", "--out", "{tmp}/b"], "12xq"),
    "train, bad option type": (["train", "--epochs", "many"], "--epochs"),
    "evaluate, model that does not exist": (["evaluate", "--model", "{tmp}"], "not a model bundle"),
    "evaluate, missing option": (["evaluate"], "--model"),
    "calibrate, data that does not exist": (["calibrate", "--model", "{bundle}", "--data", "{tmp}/nowhere",
                                             "--no-tracking", "--out", "{tmp}/c"], "nowhere"),
    "calibrate, bad option type": (["calibrate", "--model", "{bundle}", "--data", "{tmp}", "--fpr", "low"], "--fpr"),
    "audit, model that does not exist": (["audit", "{tmp}", "--model", "runs/nonexistent", "--out", "{tmp}/a"],
                                         "runs/nonexistent"),
    "serve, model that does not exist": (["serve", "--model", "runs/nonexistent"], "runs/nonexistent"),
    "serve, port in use": (["serve", "--model", "{bundle}", "--port", "{busy}"], "in use"),
    "serve, bad option value": (["serve", "--model", "{bundle}", "--port", "70000"], "--port"),
    "ui, port in use": (["ui", "--port", "{busy}"], "in use"),
    "export, model that does not exist": (["export", "--model", "runs/nonexistent", "--out", "{tmp}/e"],
                                          "runs/nonexistent"),
    "export, bad option value": (["export", "--model", "{bundle}", "--out", "{tmp}/e", "--format", "tflite"],
                                 "tflite"),
}


@pytest.fixture(scope="module")
def outcomes(trained, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    """Each case's finished process and its seconds, with a port something already listens on."""
    tmp = tmp_path_factory.mktemp("mistakes")
    (tmp / "normal.png").write_bytes(trained.val_samples[0].image.read_bytes())

    def run(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "anomaly", *args], capture_output=True, text=True,
                                timeout=300, cwd=tmp)
        return result, time.perf_counter() - start

    with socket.socket() as busy, ThreadPoolExecutor(3) as pool:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = dict(bundle=trained.bundle_path, busy=busy.getsockname()[1], tmp=tmp)
        futures = {case: pool.submit(run, [a.format(**fill) for a in args]) for case, (args, _) in MISTAKES.items()}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_is_one_error_line_and_exit_2(case, outcomes):
    result, seconds = outcomes[case]
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert MISTAKES[case][1] in errors[0], errors[0]
    assert seconds < 60, f"{seconds:.1f} s, three at a time"  # a server that started would take longer
