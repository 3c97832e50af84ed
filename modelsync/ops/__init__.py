"""Use cases: one module per command, wiring the pure core to the I/O adapters."""
