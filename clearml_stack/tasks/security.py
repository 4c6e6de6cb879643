"""`inv doctor`: for now the security audit (`clearml_stack.audit.run`); the full doctor adds host checks."""

from __future__ import annotations

from invoke import Exit

from .. import ui
from .base import settings as load_settings, task


def report(found) -> str:
    """The findings as a table, failures and warnings followed by their fixes (pure)."""
    from ..checks import worst

    rows = [(c.status.upper(), c.name, c.detail) for c in found]
    text = ui.table(("STATUS", "CHECK", "DETAIL"), rows)
    fixes = [f"- {c.name}: {c.fix}" for c in found if c.status != "ok" and c.fix]
    if fixes:
        text += "\n\nfixes:\n" + "\n".join(dict.fromkeys(fixes))
    text += f"\n\nresult: {worst(found)}"
    return text


@task(help={"json": "print the findings as JSON (for scripts)",
            "fix": "make files that hold secrets private again (chmod 600); other findings print their fix"})
def doctor(c, json=False, fix=False):
    """Check the deployment: public default secrets, file modes, exposed stores, open login."""
    import json as json_mod

    from .. import audit
    from ..checks import worst

    settings = load_settings()
    readings = audit.gather(settings)
    found = audit.evaluate(readings)
    if fix:
        changed = audit.fix_modes(found, readings)
        for path in changed:
            ui.ok(f"made {path} private (mode 0600)")
        if changed:
            found = audit.evaluate(audit.gather(settings))
    if json:
        ui.out(json_mod.dumps({"result": worst(found), "checks": [c.as_dict() for c in found]}, indent=2))
    else:
        ui.out(report(found))
    if worst(found) == "fail":
        raise Exit(code=1)
