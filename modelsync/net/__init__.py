"""HTTP leaves shared by registries and downloads: the session factory and the retry policy."""
