"""models.toml: what a project wants (`model` is pure; `load` reads the file with tomlkit)."""
