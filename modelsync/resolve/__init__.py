"""Choosing files: GGUF names, quality ranking, memory estimates and selection (all pure)."""
