"""The command-line interface: flags in, one ops call, a rendered report out."""
