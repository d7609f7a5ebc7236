"""``python -m octvessel`` runs the command line (also under ``torchrun``)."""

from octvessel.cli import main

raise SystemExit(main())
