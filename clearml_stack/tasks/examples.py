"""Proving a deployment works: `inv smoke` (plain HTTP, seconds) and `inv examples` (the real SDK)."""

from __future__ import annotations

import getpass
import json as json_mod
import sys

from .. import ui
from ..errors import StackError
from .base import interactive, settings as load_settings, task


def read_secret(what: str, from_stdin: bool) -> str:
    """One line from stdin, or a hidden prompt on a terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not interactive():
        raise StackError(f"no terminal to ask for the {what}", f"pipe it in with --{what.replace(' ', '-')}-stdin")
    return getpass.getpass(f"{what}: ")


def smoke_credentials(user: str, password_stdin: bool, access_key: str, secret_key_stdin: bool):
    """A web user's name and password, an access key and secret, or None (the kit's own key)."""
    from ..apiclient import Credentials

    if user and access_key:
        raise StackError("both --user and --access-key given", "log in either as a web user or with a key")
    if user:
        return Credentials(user, read_secret("password", password_stdin), f"web user {user!r}")
    if access_key:
        return Credentials(access_key, read_secret("secret key", secret_key_stdin), f"access key {access_key[:6]}...")
    if password_stdin or secret_key_stdin:
        raise StackError("a secret on stdin but no --user or --access-key", "say whose it is: --user NAME")
    return None


def smoke_and_report(settings, credentials=None, as_json: bool = False, **endpoints) -> None:
    """Run the smoke test, print the report, raise when a step failed (for `inv smoke` and `inv up --smoke`)."""
    from ..smoke import run, table

    report = run(settings, credentials, **endpoints)
    ui.out(json_mod.dumps(report.as_dict(), indent=2) if as_json else table(report))
    if not report.ok:
        first = report.failed[0]
        raise StackError(f"smoke test: {len(report.failed)} of {len(report.steps)} steps failed, first "
                         f"{first.name!r}: {first.detail}",
                         "`inv status` and `inv logs --service apiserver` (or fileserver) show why")
    ui.ok(f"smoke test passed: {len(report.steps)} steps")


@task(help={
    "user": "log in as this web user (its password from --password-stdin or a prompt)",
    "password_stdin": "read the web user's password from one line of stdin",
    "access_key": "log in with this API access key (its secret from --secret-key-stdin or a prompt)",
    "secret_key_stdin": "read the secret key from one line of stdin",
    "api_url": "API server to test (default: this host's, http://127.0.0.1:CLEARML_API_PORT)",
    "files_url": "file server to test (default: this host's, http://127.0.0.1:CLEARML_FILES_PORT)",
    "json": "print the report as JSON",
})
def smoke(c, user="", password_stdin=False, access_key="", secret_key_stdin=False, api_url="", files_url="",
          json=False):
    """Prove the server works: log in, create a task, report a scalar, upload and fetch a file."""
    settings = load_settings()
    settings.require_installed()
    credentials = smoke_credentials(user, password_stdin, access_key, secret_key_stdin)
    smoke_and_report(settings, credentials, as_json=json, api_url=api_url, files_url=files_url)


@task(help={
    "only": "run only these examples (comma-separated): base_task, train_cpu, pipeline_from_task, "
            "pipeline_of_pipelines",
    "queue": "queue the pipelines' training steps run on (an agent must listen there)",
    "scale": "how many child pipelines pipeline_of_pipelines fans out",
    "offline": "run in the SDK's offline mode: no server needed, sessions written under ~/.clearml",
    "output_uri": "where models and artifacts go (sets CLEARML_DEFAULT_OUTPUT_URI; default: as configured)",
    "timeout": "seconds each example may take before it is stopped",
    "list": "list the examples and exit",
})
def examples(c, only="", queue="default", scale=3, offline=False, output_uri="", timeout=3600, list=False):
    """Run the ClearML SDK examples against this server and print links to what they made."""
    from .. import examples as ex

    chosen = ex.select(only)
    if list:
        ui.out(ui.table(("EXAMPLE", "WHAT IT SHOWS"), [(e.name, e.summary) for e in chosen]))
        return
    if int(scale) < 1:
        raise StackError(f"--scale {scale}: must be 1 or more", "e.g. --scale 3")
    try:
        import clearml  # noqa: F401
    except ImportError:
        raise StackError("the ClearML SDK is not installed in the kit's environment",
                         "`.venv/bin/pip install -e '.[examples]'` (or `make examples`)") from None
    settings = load_settings()
    if not offline:
        settings.require_installed()
    config = ex.client_environment(settings, offline=offline, output_uri=output_uri)
    ui.note(f"client configuration: {config.source}")
    if not offline:
        ex.preflight(config, chosen, queue)
    outcomes = ex.run_all(settings, chosen, config, queue, int(scale), timeout=float(timeout) if timeout else None)
    rows = [(what, where) for o in outcomes for what, where in ex.links(o, config.web_url)]
    if rows:
        ui.out(ui.table(("CREATED", "WHERE"), rows))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        o = failed[0]
        why = f"exited {o.returncode}" if o.returncode else "reported nothing"
        rest = [e.name for e in chosen[len(outcomes):]]
        raise StackError(f"example {o.example.name} {why} (its output is above)"
                         + (f"; not run: {', '.join(rest)}" if rest else ""),
                         "read the example's last lines above; `inv smoke` checks the server step by step")
    ui.ok(f"{len(outcomes)} example(s) ran" + (" offline" if offline else ""))
