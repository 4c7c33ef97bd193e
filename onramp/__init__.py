"""onramp: the shared core (settings, warehouse connection, the `onramp` command)."""
