"""Benchmarks, run with `make bench` (each module is runnable with `python -m bench.<name>`)."""
