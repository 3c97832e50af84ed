"""Registries behind one seam (`base.Registry`): the Hugging Face Hub API (any Hub-compatible
endpoint) and plain HTTP(S) files."""
