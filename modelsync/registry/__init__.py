"""Registries: the Hugging Face Hub API (any Hub-compatible endpoint) and plain HTTPS files."""
