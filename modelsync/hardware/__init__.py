"""Hardware profiles: detected on this machine, or declared in models.toml."""
