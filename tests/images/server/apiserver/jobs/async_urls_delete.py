"""async_delete service test stand-in (not the product).

The official compose runs ``python3 -m jobs.async_urls_delete --fileserver-host
http://fileserver:8081`` with ``PYTHONPATH=/opt/clearml/apiserver`` (CLEARML_FACTS.md "Images and
versions"). This stand-in loads the configuration like the server, logs what it would serve and
stays alive until stopped; it deletes nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from standin.config import get, load_config
from standin.web import log


def main() -> int:
    parser = argparse.ArgumentParser(prog="jobs.async_urls_delete")
    parser.add_argument("--fileserver-host", default="http://fileserver:8081")
    args, unknown = parser.parse_known_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cfg = load_config()
    prefixes = get(cfg, "services.async_urls_delete.fileserver.url_prefixes", [])
    log("async_delete", f"fileserver host {args.fileserver_host}, url prefixes {prefixes}, ignored args {unknown}")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
