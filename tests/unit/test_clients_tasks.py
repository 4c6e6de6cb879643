"""`inv connect-script`, `inv client-config`, `inv host` through the real command line: files, modes,
refusals (nothing written), and secrets kept out of output."""

from __future__ import annotations

import os
import stat

import pytest

from tests.contract.test_client_config_sdk import ACCESS, SECRET, UI_SNIPPET


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_connect_script_default_target_on_a_lightning_studio(kit):
    proc = kit.inv("connect-script", extra_env={"LIGHTNING_CLOUD_SPACE_ID": "01hq3abc"})
    script = kit.dir / "connect.sh"
    assert mode_of(script) == 0o755
    assert "TARGET=s_01hq3abc@ssh.lightning.ai\n" in script.read_text()
    assert "tunnels through s_01hq3abc@ssh.lightning.ai" in proc.stderr


def test_connect_script_elsewhere_needs_a_target(kit):
    proc = kit.inv("connect-script", check=False)
    assert proc.returncode != 0
    assert "not a Lightning Studio" in proc.stderr and "--target USER@HOST[:PORT]" in proc.stderr
    assert not (kit.dir / "connect.sh").exists()


def test_connect_script_target_from_settings_and_bad_input(kit):
    kit.env["CLEARML_SSH_TARGET"] = "alice@10.0.0.5:2222"
    kit.inv("connect-script")
    text = (kit.dir / "connect.sh").read_text()
    assert "TARGET=alice@10.0.0.5\nSSH_PORT=2222\n" in text
    for args, words in [(["--target", "a@b;id"], "'a@b;id'"), (["--local-ports", "1,2,3"], "1024 to 65535"),
                        (["--local-ports", "18080,18080,18081"], "differ")]:
        before = text
        proc = kit.inv("connect-script", *args, check=False)
        assert proc.returncode != 0 and words in proc.stderr and "fix:" in proc.stderr
        assert (kit.dir / "connect.sh").read_text() == before, "a refusal changes nothing"


def test_connect_script_replaces_its_own_file_but_not_someone_elses(kit):
    out = kit.dir / "connect.sh"
    kit.inv("connect-script", "--target", "a@h")
    kit.inv("connect-script", "--target", "b@h")
    assert "TARGET=b@h\n" in out.read_text()
    mine = kit.dir / "notes.sh"
    mine.write_text("my own script\n")
    proc = kit.inv("connect-script", "--target", "a@h", "--out", str(mine), check=False)
    assert proc.returncode != 0 and "not a script `inv connect-script` wrote" in proc.stderr
    assert mine.read_text() == "my own script\n"
    kit.inv("connect-script", "--target", "a@h", "--out", str(mine), "--force")
    assert "TARGET=a@h\n" in mine.read_text()


def test_connect_script_to_stdout(kit):
    proc = kit.inv("connect-script", "--target", "a@h", "--out", "-")
    assert proc.stdout.startswith("#!/usr/bin/env bash\n") and "TARGET=a@h\n" in proc.stdout
    assert not (kit.dir / "connect.sh").exists()


def test_client_config_writes_0600_and_never_overwrites_without_force(kit):
    out = kit.dir / "clearml.conf"
    proc = kit.inv("client-config", "--credentials-stdin", input=UI_SNIPPET)
    assert mode_of(out) == 0o600
    text = out.read_text()
    assert f'"access_key" = "{ACCESS}"' in text and f'"secret_key" = "{SECRET}"' in text
    assert SECRET not in proc.stdout + proc.stderr
    again = kit.inv("client-config", "--credentials-stdin", input="OTHERKEY1234 OTHERSECRET1234", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr and "--force" in again.stderr
    assert out.read_text() == text
    kit.inv("client-config", "--credentials-stdin", "--force", input="OTHERKEY1234 OTHERSECRET1234")
    assert '"access_key" = "OTHERKEY1234"' in out.read_text()


def test_client_config_refusals_write_nothing(kit):
    out = kit.dir / "clearml.conf"
    cases = [
        (["--credentials-stdin"], "", "0 words"),
        (["--access-key", "AKEY12345678"], None, "both --access-key and --secret-key"),
        (["--credentials-stdin", "--access-key", "AKEY12345678"], "A B", "one way only"),
        (["--credentials-stdin", "--output-uri", "ftp://x/y"], UI_SNIPPET, "--output-uri 'ftp://x/y'"),
        (["--credentials-stdin", "--s3-endpoint", "http://minio:9000"], UI_SNIPPET, "must not include a scheme"),
        (["--credentials-stdin", "--s3-no-tls"], UI_SNIPPET, "need --s3-endpoint"),
        ([], None, "no API credentials given"),
    ]
    for args, stdin, words in cases:
        proc = kit.inv("client-config", *args, input=stdin, check=False)
        assert proc.returncode != 0, args
        assert words in proc.stderr, (args, proc.stderr)
        assert "fix:" in proc.stderr
        assert not out.exists(), args


def test_client_config_local_ports_only_in_tunnel_mode(kit):
    kit.env.update(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com")
    proc = kit.inv("client-config", "--credentials-stdin", "--local-ports", "18080,18008,18081", input=UI_SNIPPET,
                   check=False)
    assert proc.returncode != 0 and "tunnel mode only" in proc.stderr
    kit.inv("client-config", "--credentials-stdin", "--no-verify-certificate", input=UI_SNIPPET)
    text = (kit.dir / "clearml.conf").read_text()
    assert 'api_server: "http://api.ml.example.com' in text and "verify_certificate: false" in text


def test_client_config_flags_warn_about_argv(kit):
    proc = kit.inv("client-config", "--access-key", "AKEY12345678", "--secret-key", "SECRET12345678")
    assert "visible to other users" in proc.stderr and "SECRET12345678" not in proc.stderr + proc.stdout


def test_host_prints_urls_commands_and_next_steps(kit):
    proc = kit.inv("host", extra_env={"LIGHTNING_CLOUD_SPACE_ID": "01hq3abc"})
    out = proc.stdout
    assert "Access mode tunnel" in out
    assert f"scp 's_01hq3abc@ssh.lightning.ai:{kit.dir}/connect.sh' ." in out or \
        f"scp s_01hq3abc@ssh.lightning.ai:{kit.dir}/connect.sh ." in out
    assert "bash connect.sh --check" in out and "http://localhost:8080" in out
    assert "inv client-config --credentials-stdin" in out
    assert "no settings file yet" in proc.stderr
    kit.env.update(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com")
    other = kit.inv("host").stdout
    assert "no tunnel needed" in other and "api.ml.example.com" in other and "connect.sh" not in other


def _run_task(task, monkeypatch, tmp_path, **kwargs):
    """Call a task in this process (settings from a fresh kit directory); returns the exit code."""
    from invoke import Context, Exit

    from tests.kit import clean_environ

    for key in list(os.environ):
        if key not in clean_environ():
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLEARML_ENV_FILE", str(tmp_path / ".env"))
    try:
        task(Context(), **kwargs)
    except Exit as exc:
        return exc.code
    return 0


@pytest.mark.parametrize("force", [False, True])
def test_client_config_never_overwrites_a_file_created_while_it_asked_for_credentials(tmp_path, monkeypatch,
                                                                                      capsys, force):
    from clearml_stack.clients import Credentials
    from clearml_stack.tasks import clients as tasks

    out = tmp_path / "clearml.conf"

    def slow_prompt(*args):
        out.write_text("written meanwhile\n")  # e.g. a second `inv client-config`, or the user's own copy
        return Credentials(ACCESS, SECRET)

    monkeypatch.setattr(tasks, "_read_credentials", slow_prompt)
    code = _run_task(tasks.client_config, monkeypatch, tmp_path, out=str(out), force=force)
    if force:
        assert code == 0 and ACCESS in out.read_text()
    else:
        assert code != 0
        err = capsys.readouterr().err
        assert f"{out} already exists" in err and "--force" in err
        assert out.read_text() == "written meanwhile\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".clearml")) == []


def test_connect_script_never_overwrites_a_file_created_while_it_rendered(tmp_path, monkeypatch, capsys):
    from clearml_stack.render import connect_script as render
    from clearml_stack.tasks import clients as tasks

    out = tmp_path / "connect.sh"
    real = render.render_connect_script

    def slow_render(*args, **kwargs):
        out.write_text("someone's own script\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_connect_script", slow_render)
    code = _run_task(tasks.connect_script, monkeypatch, tmp_path, out=str(out), target="a@h")
    assert code != 0 and f"{out} already exists" in capsys.readouterr().err
    assert out.read_text() == "someone's own script\n"
