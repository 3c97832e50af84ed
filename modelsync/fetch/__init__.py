"""Downloads: fast, resumable across crashes, verified byte for byte before entering the store."""
