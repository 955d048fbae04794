"""``python -m knevents`` runs the CLI."""

from knevents.cli import main

raise SystemExit(main())
