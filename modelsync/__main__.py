"""`python -m modelsync` is the same as the `modelsync` console script."""

from modelsync.cli.main import main

raise SystemExit(main())
