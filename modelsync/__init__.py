"""modelsync: keep LLM model files where they belong, pinned by a lockfile."""

__version__ = "0.1.0"
