"""Security tasks through the real `inv` CLI and the real Docker Compose (no engine needed):
`inv doctor` (the audit), `inv keys`, refused users, the ports-exposed layer, `inv up` refusing open."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from pyhocon import ConfigFactory

from clearml_stack.settings import SECRET_KEYS
from clearml_stack.users import verify_password
from tests.kit import Kit, new_kit

pytestmark = pytest.mark.contract

DEFAULT_TOKEN_SECRET = "Rq8FW84sSqVgq7WvBB_4EzNl9y8z8IGiDXX3C345_a5AZfcwZcwCIA"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Kit:
    """One deployment installed through the CLI with user alice; each test gets its own copy."""
    k = new_kit(tmp_path_factory.mktemp("template"))
    k.inv("install", "--user", "alice", "--password-stdin", input="pw one\n")
    return k


@pytest.fixture
def installed(template: Kit, tmp_path) -> Kit:
    shutil.copytree(template.dir, tmp_path, dirs_exist_ok=True, symlinks=True)
    if os.geteuid() == 0:  # copytree keeps modes, not owners: give each copy its original's owner back
        for src in template.dir.rglob("*"):
            st = src.lstat()
            os.lchown(tmp_path / src.relative_to(template.dir), st.st_uid, st.st_gid)
    kit = new_kit(tmp_path)
    # the kit's stand-in for /proc/sys/vm/max_map_count (tests never read or change the host's): a good host
    (kit.dir / ".test-max_map_count").write_text("524288\n")
    return kit


def snapshot(kit: Kit) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(kit.dir)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(kit.dir.rglob("*")) if p.is_file()}


def doctor(kit: Kit, **extra_env: str):
    return kit.inv("doctor", check=False, extra_env=extra_env or None)


# --- the audit ----------------------------------------------------------------------------------


def test_audit_passes_on_a_fresh_install(installed):
    res = doctor(installed)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "result: ok" in res.stdout
    assert not re.search(r"^FAIL", res.stdout, re.M)


def test_audit_fails_on_a_default_token_secret(installed):
    secure = installed.data_dir / "config" / "secure.conf"
    text = secure.read_text()
    secure.write_text(re.sub(r'token_secret: "[^"]*"', f'token_secret: "{DEFAULT_TOKEN_SECRET}"', text))
    res = doctor(installed)
    assert res.returncode == 1
    assert f"{secure}: secure.auth.token_secret is a public default" in res.stdout


def test_audit_fails_on_a_world_readable_env(installed):
    installed.env_file.chmod(0o644)
    res = doctor(installed)
    assert res.returncode == 1
    assert f"{installed.env_file} is readable by group/others (mode 0644)" in res.stdout
    fixed = installed.inv("doctor", "--fix", check=False)
    assert fixed.returncode == 0, fixed.stdout
    assert installed.env_file.stat().st_mode & 0o777 == 0o600


def test_audit_fails_on_a_store_published_on_all_interfaces(installed):
    res = doctor(installed, CLEARML_EXPOSE_STORES="all")
    assert res.returncode == 1
    assert "mongo is published on 0.0.0.0:27017" in res.stdout
    assert "redis is published on 0.0.0.0:6379" in res.stdout
    assert doctor(installed, CLEARML_EXPOSE_STORES="loopback").returncode == 0


def test_audit_fails_when_login_is_open(kit):
    kit.inv("install")
    res = doctor(kit)
    assert res.returncode == 1
    assert "no web login user" in res.stdout and "inv users.add NAME" in res.stdout


def test_audit_json(installed):
    data = json.loads(installed.inv("doctor", "--json").stdout)
    assert data["result"] == "ok" and {c["status"] for c in data["checks"]} == {"ok"}


# --- the ports-exposed layer ----------------------------------------------------------------------


def merged(kit: Kit, **env: str) -> dict:
    return json.loads(kit.inv("compose", "--", "config", "--format", "json", extra_env=env).stdout)


def store_ports(config: dict) -> dict[str, list[tuple[str, str]]]:
    return {s: [(p.get("host_ip", ""), str(p["published"])) for p in config["services"][s].get("ports", [])]
            for s in ("mongo", "elasticsearch", "redis")}


def test_stores_are_never_published_by_default(installed):
    assert store_ports(merged(installed)) == {"mongo": [], "elasticsearch": [], "redis": []}


def test_loopback_publishes_stores_on_127_0_0_1_with_the_configured_ports(installed):
    ports = store_ports(merged(installed, CLEARML_EXPOSE_STORES="loopback", CLEARML_MONGO_PORT="27999",
                               CLEARML_ELASTIC_PORT="9299", CLEARML_REDIS_PORT="6399"))
    assert ports == {"mongo": [("127.0.0.1", "27999")], "elasticsearch": [("127.0.0.1", "9299")],
                     "redis": [("127.0.0.1", "6399")]}


def test_all_publishes_stores_on_every_interface(installed):
    ports = store_ports(merged(installed, CLEARML_EXPOSE_STORES="all"))
    assert ports == {"mongo": [("0.0.0.0", "27017")], "elasticsearch": [("0.0.0.0", "9200")],
                     "redis": [("0.0.0.0", "6379")]}


def test_up_warns_about_exposed_stores_every_time(installed):
    # an engine that cannot be reached: the warning comes first, then up stops at the preflight
    res = installed.inv("up", check=False, extra_env={"CLEARML_EXPOSE_STORES": "all",
                                                      "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert res.returncode != 0
    assert "CLEARML_EXPOSE_STORES=all: Mongo, Elasticsearch and Redis listen on ALL interfaces" in res.stderr


def test_up_refuses_an_open_server(kit):
    kit.inv("install")
    res = kit.inv("up", check=False)
    assert res.returncode != 0
    assert "no web login user exists" in res.stderr
    assert "inv users.add NAME" in res.stderr and "--allow-open" in res.stderr


# --- inv keys -----------------------------------------------------------------------------------


def secrets_of(kit: Kit) -> dict[str, str]:
    return {k: kit.settings().secret(k) for k in SECRET_KEYS}


def test_keys_lists_masked_and_shows_only_when_asked(installed):
    values = secrets_of(installed)
    res = installed.inv("keys")
    assert all(v not in res.stdout + res.stderr for v in values.values())
    assert all(k in res.stdout for k in SECRET_KEYS) and "********" in res.stdout
    shown = installed.inv("keys", "--show").stdout
    assert all(v in shown for v in values.values())


def test_rotate_replaces_system_credentials_and_secrets_but_not_the_agent_pair(installed):
    before = secrets_of(installed)
    res = installed.inv("keys", "--rotate")
    after = secrets_of(installed)
    output = res.stdout + res.stderr
    assert all(v not in output for v in list(before.values()) + list(after.values())), "a secret was printed"
    agent = {"CLEARML_AGENT_ACCESS_KEY", "CLEARML_AGENT_SECRET_KEY"}
    assert {k for k in SECRET_KEYS if before[k] != after[k]} == set(SECRET_KEYS) - agent
    secure = (installed.data_dir / "config" / "secure.conf").read_text()
    assert after["CLEARML_AUTH_TOKEN_SECRET"] in secure and before["CLEARML_AUTH_TOKEN_SECRET"] not in secure
    assert installed.env_file.stat().st_mode & 0o777 == 0o600
    assert doctor(installed).returncode == 0

    installed.inv("keys", "--rotate", "--agent")
    again = secrets_of(installed)
    assert all(again[k] != after[k] for k in SECRET_KEYS)
    # what the server and the agents on this host are given: the new pair, in config and compose alike
    secure = (installed.data_dir / "config" / "secure.conf").read_text()
    assert again["CLEARML_AGENT_ACCESS_KEY"] in secure and after["CLEARML_AGENT_ACCESS_KEY"] not in secure
    api_env = merged(installed)["services"]["apiserver"]["environment"]
    assert api_env["CLEARML__secure__credentials__services_agent__user_key"] == again["CLEARML_AGENT_ACCESS_KEY"]
    assert api_env["CLEARML__secure__credentials__services_agent__user_secret"] == again["CLEARML_AGENT_SECRET_KEY"]


def test_agent_flag_needs_rotate(installed):
    res = installed.inv("keys", "--agent", check=False)
    assert res.returncode != 0 and "inv keys --rotate --agent" in res.stderr


def test_rotate_refuses_keys_from_the_environment_and_changes_nothing(installed):
    before = snapshot(installed)
    res = installed.inv("keys", "--rotate", check=False,
                        extra_env={"CLEARML_APISERVER_KEY": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"})
    assert res.returncode != 0 and "CLEARML_APISERVER_KEY" in res.stderr and "unset" in res.stderr
    assert snapshot(installed) == before


# --- refused users through the CLI ---------------------------------------------------------------


@pytest.mark.parametrize("args, password, message", [
    (["bob"], "pässword", "non-ASCII"),
    (["bob"], "pass\tword", "control character"),
    (["bob"], "a" * 73, "at most 72"),
    (["bob"], "", "empty"),
    (["alice"], "fine pass", "already exists"),
    (["ALICE"], "fine pass", "already exists"),
    (["bo b"], "fine pass", "not accepted"),
    (["bob", "--name", "Bob\u2028Smith"], "fine pass", "display name"),
])
def test_refused_users_change_no_file(installed, args, password, message):
    before = snapshot(installed)
    res = installed.inv("users.add", *args, "--password-stdin", input=password + "\n", check=False)
    assert res.returncode != 0
    assert message in res.stderr
    assert password not in res.stderr or password in ("", "fine pass")
    assert snapshot(installed) == before


def test_install_with_an_existing_user_changes_nothing(installed):
    before = snapshot(installed)
    res = installed.inv("install", "--user", "alice", "--password-stdin", input="other pass\n")
    assert "exists already" in res.stderr
    assert snapshot(installed) == before


def test_users_list_never_shows_hashes(installed):
    installed.inv("users.add", "bob", "--name", "Bob \"B\" O'Neil", "--password-stdin", input="pw two\n")
    out = installed.inv("users.list").stdout
    assert "Bob \"B\" O'Neil" in out and "JDJ" not in out and "$2b$" not in out


def test_removing_the_last_user_of_a_stopped_server_warns(installed):
    res = installed.inv("users.remove", "alice")
    assert "no users left" in res.stderr
    assert "enabled: false" in (installed.data_dir / "config" / "apiserver.conf").read_text()


# --- a hand-edited users file with a bad entry is repaired with the commands its error names -------


def add_raw_entry(kit: Kit, entry: dict) -> None:
    """Append an entry to the users file by hand, as someone editing it would."""
    path = kit.settings().users_file
    data = json.loads(path.read_text())
    data["users"].append(entry)
    path.write_text(json.dumps(data))


def test_a_bad_stored_hash_is_repaired_with_users_passwd(installed):
    add_raw_entry(installed, {"username": "bob", "name": "bob", "password_hash": "bm90IGEgaGFzaA=="})
    refused = installed.inv("users.list", check=False)
    assert refused.returncode != 0
    assert "the stored password of 'bob' is not a base64 bcrypt hash" in refused.stderr
    assert "`inv users.passwd bob`" in refused.stderr and "`inv users.remove bob`" in refused.stderr

    installed.inv("users.passwd", "bob", "--password-stdin", input="bob new pass\n")
    assert "bob" in installed.inv("users.list").stdout
    conf = ConfigFactory.parse_file(str(installed.data_dir / "config" / "apiserver.conf"))
    rendered = {u["username"]: u["password"] for u in conf["auth"]["fixed_users"]["users"]}
    assert set(rendered) == {"alice", "bob"} and verify_password("bob new pass", rendered["bob"])
    assert doctor(installed).returncode == 0


def test_a_bad_user_name_is_repaired_with_users_remove(installed):
    add_raw_entry(installed, {"username": "bad name", "name": "x", "password_hash": "bm90IGEgaGFzaA=="})
    refused = installed.inv("users.list", check=False)
    assert refused.returncode != 0 and "`inv users.remove 'bad name'`" in refused.stderr
    # passwd cannot make that name acceptable: refused, nothing changes, and the fix is named again
    before = snapshot(installed)
    res = installed.inv("users.passwd", "bad name", "--password-stdin", input="some pass\n", check=False)
    assert res.returncode != 0 and "not accepted" in res.stderr and "`inv users.remove 'bad name'`" in res.stderr
    assert snapshot(installed) == before

    installed.inv("users.remove", "bad name")
    assert [u["username"] for u in json.loads(installed.settings().users_file.read_text())["users"]] == ["alice"]
    assert "bad name" not in installed.inv("users.list").stdout
    assert doctor(installed).returncode == 0


def test_a_users_file_that_is_not_json_is_refused_by_remove_and_passwd(installed):
    users_file = installed.settings().users_file
    users_file.write_text("{not json")
    before = snapshot(installed)
    for args in (["users.remove", "alice"], ["users.passwd", "alice", "--password-stdin"]):
        res = installed.inv(*args, input="a pass\n", check=False)
        assert res.returncode != 0
        assert f"users file {users_file} cannot be read" in res.stderr and "restore it from a backup" in res.stderr
    assert snapshot(installed) == before


def test_doctor_reports_a_bad_users_file_with_its_fix(installed):
    add_raw_entry(installed, {"username": "bob", "name": "bob", "password_hash": "bm90IGEgaGFzaA=="})
    res = doctor(installed)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the stored password of 'bob' is not a base64 bcrypt hash" in res.stdout
    assert "inv users.passwd bob" in res.stdout
    assert "Traceback" not in res.stderr and "result: fail" in res.stdout
    installed.settings().users_file.write_text("{not json")
    res = doctor(installed)
    assert res.returncode == 1 and "cannot be read" in res.stdout and "restore it from a backup" in res.stdout


# --- users and install refusals that must come before anything is written ------------------------


def test_users_add_before_install_is_refused_and_writes_nothing(kit):
    kit.dir.mkdir(exist_ok=True)
    res = kit.inv("users.add", "alice", "--password-stdin", input="pw one\n", check=False)
    assert res.returncode != 0
    assert "run `inv install`" in res.stderr
    assert list(kit.dir.iterdir()) == []


@pytest.mark.parametrize("user, password, message", [
    ("bad name", "fine pass", "user name 'bad name' is not accepted"),
    ("bob", "", "the password is empty"),
    ("bob", "a" * 73, "at most 72"),
])
def test_install_with_a_refused_user_writes_nothing(kit, user, password, message):
    kit.dir.mkdir(exist_ok=True)
    res = kit.inv("install", "--user", user, "--password-stdin", input=password + "\n", check=False)
    assert res.returncode != 0 and message in res.stderr
    assert list(kit.dir.iterdir()) == []


def test_install_with_a_case_duplicate_user_changes_nothing(installed):
    before = snapshot(installed)
    res = installed.inv("install", "--user", "ALICE", "--password-stdin", input="other pass\n", check=False)
    assert res.returncode != 0 and "already exists (as 'alice')" in res.stderr
    assert snapshot(installed) == before


# --- the agents get the rotated pair --------------------------------------------------------------


def test_rotated_agent_pair_reaches_agent_services_and_workers(installed):
    old = secrets_of(installed)
    installed.inv("keys", "--rotate", "--agent")
    new = secrets_of(installed)
    assert new["CLEARML_AGENT_ACCESS_KEY"] != old["CLEARML_AGENT_ACCESS_KEY"]
    services = merged(installed, CLEARML_SERVICES_AGENT="true", CLEARML_AGENT_REPLICAS="2")["services"]
    for name in ("agent-services", "agent"):
        env = services[name]["environment"]
        assert (env["CLEARML_API_ACCESS_KEY"], env["CLEARML_API_SECRET_KEY"]) == \
            (new["CLEARML_AGENT_ACCESS_KEY"], new["CLEARML_AGENT_SECRET_KEY"]), name


# --- help text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["users.add", "users.remove", "users.passwd"])
def test_username_argument_has_help(kit, task):
    out = kit.inv("--help", task).stdout
    line = next(ln for ln in out.splitlines() if "--username" in ln)
    assert line.split("--username=STRING", 1)[1].strip(), out
