"""Maintained benchmarks and dataset builders; run each as `python -m experiments.<name>` (RESULTS.md)."""
