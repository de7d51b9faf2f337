"""Image anomaly detection with autoencoders: train on normal images, calibrate, score, explain."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("anomaly")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
