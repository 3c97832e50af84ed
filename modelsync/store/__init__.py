"""The content-addressed blob store: one copy of each content, named by its SHA-256."""
