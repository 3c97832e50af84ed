"""`modelsync search`: filtering and ranking a registry's listing (pure)."""
