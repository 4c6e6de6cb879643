"""Configuration loading of the ClearML server, reproduced for the test stand-in (not the product).

CLEARML_FACTS.md "How the server reads configuration": built-in defaults, then every ``*.conf``
under /opt/clearml/config (recursive, the relative path is the key prefix), then environment
variables ``CLEARML__a__b__c`` (lower-cased, ``__`` -> ``.``) whose values are parsed as HOCON.
The defaults hold the PUBLIC default secrets of the upstream ``secure.conf`` ("Public default
secrets" section) so tests can prove a deployment replaced every one of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyhocon import ConfigFactory, ConfigTree

ENV_PREFIX = "CLEARML__"
DEFAULT_CONFIG_DIR = "/opt/clearml/config"

# The stand-in's own small default tree (all roles share it, as they share one image).
DEFAULTS = """
apiserver {
    listen { host: "0.0.0.0", port: 8008 }
    auth {
        session_auth_cookie_name: "clearml_token_basic"
        default_expiration_sec: 2592000
        cookies { httponly: true, secure: false, domain: null, samesite: Lax, max_age: 99999999999 }
        fixed_users { enabled: false, pass_hashed: false, users: [] }
    }
}
fileserver {
    listen { host: "0.0.0.0", port: 8081 }
    delete { allow_batch: true }
    upload { max_upload_size_mb: 0 }
    auth {
        enabled: true
        cookie_names: ["clearml_token_basic"]
        tokens_cache_threshold_sec: 43200
    }
}
hosts { api_server: "http://apiserver:8008" }
services { async_urls_delete { enabled: true, fileserver { url_prefixes: [] } } }
secure {
    http { session_secret { apiserver: "V8gcW3EneNDcNfO7G_TSUsWe7uLozyacc9_I33o7bxUo8rCN31VLRg" } }
    auth { token_secret: "Rq8FW84sSqVgq7WvBB_4EzNl9y8z8IGiDXX3C345_a5AZfcwZcwCIA" }
    credentials {
        apiserver {
            role: "system"
            user_key: "62T8CP7HGBC6647XF9314C2VY67RJO"
            user_secret: "gaOfhDX2-bpkeI7-cwEcaMuGijxaG2UG3jbIvg4DxmVGF0LNI7rgvCb1-ne38IlBo1w"
        }
        fileserver {
            role: "system"
            user_key: "GSQWPEKSKNKF354LC9V6BHXKTYFD5I"
            user_secret: "tuBXcGQBECsEhcNiK2kiWi750z9r8Z85XrQ9V0c24huTuCb2xf2X1nKG"
        }
        webserver {
            role: "system"
            user_key: "EYVQ385RW7Y2QQUH88CZ7DWIQ1WUHP"
            user_secret: "XhkH6a6ds9JBnM_MrahYyYdO-wS2bqFSm8gl-V0UZXH26Ydd6Eyi28TeBEoSr6Z3Bes"
            revoke_in_fixed_mode: true
        }
        services_agent { role: "admin", user_key: "", user_secret: "" }
        tests {
            role: "user"
            display_name: "Default User"
            user_key: "EGRTCO8JMSIGI6S39GTP43NFWXDQOW"
            user_secret: "LPEJbGJ6bK4tujQcmrD3i1dbMBDdwUwelVa-LG0K0FFmY9bzH_H0Sw"
            revoke_in_fixed_mode: true
        }
    }
}
"""


def parse_value(text: str) -> Any:
    """Parse one value the way the server parses CLEARML__ env vars (HOCON: true, 1E3, [a,b])."""
    return ConfigFactory.parse_string(f"v: {text}").get("v")


def _put(tree: ConfigTree, key: str, value: Any) -> ConfigTree:
    overlay = ConfigTree()
    overlay.put(key, value)
    return ConfigTree.merge_configs(tree, overlay)


def config_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("CLEARML_CONFIG_DIR", DEFAULT_CONFIG_DIR).split(":") if p]


def load_config(environ: dict[str, str] | None = None) -> ConfigTree:
    """Defaults, then <dir>/**/*.conf (path = key prefix), then CLEARML__ env vars."""
    environ = dict(os.environ if environ is None else environ)
    tree = ConfigFactory.parse_string(DEFAULTS)
    for root in config_dirs():
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.conf")):
            prefix = ".".join(path.relative_to(root).with_suffix("").parts)
            tree = _put(tree, prefix, ConfigFactory.parse_file(str(path)))
    for name in sorted(k for k in environ if k.startswith(ENV_PREFIX)):
        key = ".".join(name[len(ENV_PREFIX):].lower().split("__"))
        try:
            value = parse_value(environ[name])
        except Exception as exc:  # the real server fails the same way on a bad value
            raise SystemExit(f"invalid value in environment variable {name}: {exc}") from exc
        tree = _put(tree, key, value)
    return tree


def get(tree: ConfigTree, key: str, default: Any = None) -> Any:
    try:
        value = tree.get(key, default)
    except Exception:  # pyhocon raises when an intermediate node is not a tree
        return default
    return default if value is None else value


def plain(value: Any) -> Any:
    """ConfigTree -> plain dicts/lists for JSON output."""
    if isinstance(value, ConfigTree):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
