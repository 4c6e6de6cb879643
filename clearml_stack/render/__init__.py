"""Pure functions that turn settings into files: no Docker, no disk writes here."""
