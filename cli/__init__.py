"""The `onramp` command: the top layer, a thin front over every area (see cli.main)."""
