"""Entrypoint of the ClearML server test stand-in: the first argument is the role, as in the
real image (compose ``command: [apiserver]`` / ``[fileserver]`` / ``[webserver]``)."""

from __future__ import annotations

import importlib
import sys

ROLES = ("apiserver", "fileserver", "webserver")


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        print(f"usage: <image> {{{'|'.join(ROLES)}}} (got {role!r})", file=sys.stderr)
        return 2
    importlib.import_module(f"standin.{role}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
