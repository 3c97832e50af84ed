"""models.lock: values (`model`), text (`render`), staleness (`freshness`), disk (`io`)."""
