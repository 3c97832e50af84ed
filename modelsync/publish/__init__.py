"""`modelsync publish`: the upload plan (pure), the model card, and the one commit (I/O)."""
