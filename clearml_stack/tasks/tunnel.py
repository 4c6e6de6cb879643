"""Public tunnels in front of the subdomain gateway: `inv tunnel.cloudflare`."""

from __future__ import annotations

import shlex

from .. import ui
from .base import settings as load_settings, task


@task(help={
    "tunnel": "name of the Cloudflare tunnel (created with `cloudflared tunnel create NAME`)",
    "credentials_file": "the tunnel's credentials JSON (default: cloudflared looks in ~/.cloudflared)",
    "out": "where to write the configuration (default: <data>/cloudflared/config.yml)",
})
def cloudflare(c, tunnel="clearml", credentials_file="", out=""):
    """Write a cloudflared config for app./api./files.<domain> and print the commands to run."""
    from pathlib import Path

    from ..fsutil import write_if_changed
    from ..render.cloudflared import plan

    settings = load_settings()
    path = Path(out).expanduser().resolve() if out else settings.data_dir / "cloudflared" / "config.yml"
    result = plan(settings, tunnel, str(Path(credentials_file).expanduser()) if credentials_file else "",
                  shlex.quote(str(path)))
    for warning in result.warnings:
        ui.warn(warning)
    changed = write_if_changed(path, result.text, 0o644)
    (ui.ok if changed else ui.note)(f"{'wrote' if changed else 'unchanged:'} {path} "
                                    f"({', '.join(result.hostnames)} -> {result.origin})")
    ui.note("with cloudflared installed (this kit downloads nothing), run once, then keep the last one running:")
    for command in result.commands:
        ui.out(command)
    if not credentials_file:
        ui.note("`cloudflared tunnel create` prints where it put the credentials; if it is not "
                "~/.cloudflared/<tunnel id>.json, run this again with --credentials-file")
