"""Helpers for tests and benchmarks, shipped in the package: synthetic GGUF files, Hub server."""
