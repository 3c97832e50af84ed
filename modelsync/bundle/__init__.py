"""Air-gap bundles: exactly the blobs of a lock, the lock and an index of their digests."""
