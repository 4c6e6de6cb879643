"""`inv k8s.values`: values for the official Helm charts, from the kit's settings and users.

The key paths below are the ones the kit relies on, transcribed from the charts' values.yaml of the
versions the kit targets: chart ``clearml`` 7.14.4 and chart ``clearml-agent`` 5.3.2. A path marked
free-form is a map or list the chart passes through as a whole (annotations, extraEnvs, config files).
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat

import pytest
import yaml
from pyhocon import ConfigFactory

from clearml_stack import k8s, secrets
from clearml_stack.errors import StackError
from clearml_stack.render import helm
from clearml_stack.settings import SECRET_KEYS, Settings, load
from clearml_stack.users import User, hash_password, save_users

# --- what the charts define ------------------------------------------------------------------

#: chart clearml 7.14.4, values.yaml: leaf keys the kit writes (value types as in the chart)
CLEARML_7_14_4_PATHS = {
    "global.imageRegistry",
    "clearml.cookieDomain",
    "clearml.apiserverKey",
    "clearml.apiserverSecret",
    "clearml.fileserverKey",
    "clearml.fileserverSecret",
    "clearml.secureAuthTokenSecret",
    "clearml.testUserKey",
    "clearml.testUserSecret",
    "clearml.clientConfigurationApiUrl",
    "clearml.clientConfigurationFilesUrl",
    "clearml.existingSecret",
    *(f"{c}.image.{k}" for c in ("apiserver", "fileserver", "webserver") for k in ("registry", "repository", "tag")),
    *(f"{c}.ingress.{k}" for c in ("apiserver", "fileserver", "webserver")
      for k in ("enabled", "ingressClassName", "hostName", "tlsSecretName", "path")),
    "apiserver.extraEnvs",
    "fileserver.extraEnvs",
    "fileserver.storage.enabled",
    "fileserver.storage.data.class",
    "fileserver.storage.data.size",
    "externalServices.elasticsearchConnectionString",
    "externalServices.mongodbConnectionStringAuth",
    "externalServices.mongodbConnectionStringBackend",
    "externalServices.redisHost",
    "externalServices.redisPort",
    "redis.enabled",
    "redis.master.persistence.size",
    "redis.master.persistence.storageClass",
    "mongodb.enabled",
    "mongodb.persistence.size",
    "mongodb.persistence.storageClass",
    "elasticsearch.enabled",
    "elasticsearch.volumeClaimTemplate.storageClassName",
    "elasticsearch.volumeClaimTemplate.resources.requests.storage",
}
#: chart clearml 7.14.4: maps/lists taken whole (defaults {} or [])
CLEARML_7_14_4_FREEFORM = {
    "apiserver.ingress.annotations",
    "fileserver.ingress.annotations",
    "webserver.ingress.annotations",
    "apiserver.additionalConfigs",
}
#: chart clearml-agent 5.3.2, values.yaml
AGENT_5_3_2_PATHS = {
    "global.imageRegistry",
    "clearml.agentk8sglueKey",
    "clearml.agentk8sglueSecret",
    "clearml.existingAgentk8sglueSecret",
    "agentk8sglue.apiServerUrlReference",
    "agentk8sglue.fileServerUrlReference",
    "agentk8sglue.webServerUrlReference",
    "agentk8sglue.queue",
    "agentk8sglue.createQueueIfNotExists",
    "agentk8sglue.clearmlcheckCertificate",
}


def unknown_paths(values: dict, leaves: set[str], freeform: set[str] = frozenset(), prefix: str = "") -> list[str]:
    """Every key path in ``values`` the chart does not define."""
    found = []
    branches = {p.rsplit(".", i)[0] for p in leaves | freeform for i in range(1, p.count(".") + 1)}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in freeform or (path in leaves and not isinstance(value, dict)):
            continue
        if isinstance(value, dict) and path in branches:
            found += unknown_paths(value, leaves, freeform, path + ".")
        else:
            found.append(path)
    return found


def test_the_path_checker_catches_a_misspelt_key():
    assert unknown_paths({"apiserver": {"ingres": {"enabled": True}}}, CLEARML_7_14_4_PATHS) == ["apiserver.ingres"]
    assert unknown_paths({"clearml": {"cookieDomain": {"x": 1}}}, CLEARML_7_14_4_PATHS) == ["clearml.cookieDomain"]
    assert unknown_paths({"apiserver": {"additionalConfigs": {"a.conf": "x"}}}, CLEARML_7_14_4_PATHS,
                         CLEARML_7_14_4_FREEFORM) == []


def test_the_targets_are_the_versions_the_paths_come_from():
    assert helm.SERVER_CHART == helm.Chart("clearml", "7.14.4")
    assert helm.AGENT_CHART == helm.Chart("clearml-agent", "5.3.2")


# --- fixtures ---------------------------------------------------------------------------------

DOMAIN = "clearml.example.com"


def make_settings(tmp_path, **overrides: str) -> Settings:
    """Loaded the way the kit loads them, with every secret generated."""
    values = {"CLEARML_DOMAIN": DOMAIN, **secrets.fill_missing({}), **overrides}
    return load(environ={"CLEARML_ENV_FILE": str(tmp_path / ".env"), **values})


@pytest.fixture(scope="module")
def users() -> list[User]:
    return [User("alice", "Alice A.", hash_password("correct horse", rounds=4)),
            User("bob.oneil@lab", "Bob \"B\" O'Neil", hash_password("battery staple", rounds=4))]


EXTERNAL = {
    "CLEARML_EXTERNAL_MONGO_URI": "mongodb://mongo-0.db:27017,mongo-1.db:27017/?replicaSet=rs0",
    "CLEARML_EXTERNAL_ELASTIC_HOSTS": "es1.db:9200,es2.db:9201",
    "CLEARML_EXTERNAL_REDIS_HOST": "redis.db",
    "CLEARML_EXTERNAL_REDIS_PORT": "6380",
}
VARIANTS = {
    "plain": ({}, helm.K8sOptions()),
    "existing-secret": ({}, helm.K8sOptions(existing_secret="clearml-secrets")),
    "tls-provided": ({"CLEARML_TLS": "provided", "CLEARML_TLS_CERT": "/c.pem", "CLEARML_TLS_KEY": "/k.pem",
                      "CLEARML_K8S_INGRESS_CLASS": "nginx"}, helm.K8sOptions()),
    "self-signed+storage": ({"CLEARML_TLS": "self-signed", "CLEARML_K8S_STORAGE_CLASS": "gp3"},
                            helm.K8sOptions(existing_secret="s")),
    "tls-external": ({"CLEARML_TLS": "external"}, helm.K8sOptions()),
    "external": (EXTERNAL, helm.K8sOptions(external_stores=True)),
    "external+secret+flag-class": (EXTERNAL, helm.K8sOptions(external_stores=True, existing_secret="x.y",
                                                             storage_class="fast")),
    "mirror": ({"IMAGE_REGISTRY": "registry.local:5000/mirror/"}, helm.K8sOptions(storage_class="fast")),
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request, tmp_path, users):
    overrides, options = VARIANTS[request.param]
    settings = make_settings(tmp_path, **overrides)
    return settings, users, options, helm.render_bundle(settings, users, options)


# --- the chart's structure --------------------------------------------------------------------


def test_every_key_path_written_exists_in_the_charts(variant):
    settings, users, options, files = variant
    assert unknown_paths(yaml.safe_load(files[helm.VALUES_FILE]), CLEARML_7_14_4_PATHS, CLEARML_7_14_4_FREEFORM) == []
    assert unknown_paths(yaml.safe_load(files[helm.AGENT_VALUES_FILE]), AGENT_5_3_2_PATHS) == []


def test_files_parse_as_yaml_to_exactly_the_rendered_values(variant):
    settings, users, options, files = variant
    assert yaml.safe_load(files[helm.VALUES_FILE]) == helm.clearml_values(settings, users, options)
    assert yaml.safe_load(files[helm.AGENT_VALUES_FILE]) == helm.agent_values(settings, options)
    if options.existing_secret:
        assert yaml.safe_load(files[helm.SECRET_FILE]) == helm.secret_manifest(settings, options)
    else:
        assert helm.SECRET_FILE not in files


def test_the_fileserver_pair_reaches_apiserver_and_fileserver_through_extra_envs(variant):
    settings, users, options, files = variant
    values = yaml.safe_load(files[helm.VALUES_FILE])
    wanted = {"CLEARML__secure__credentials__fileserver__user_key": ("fileserver_key", "CLEARML_FILESERVER_KEY"),
              "CLEARML__secure__credentials__fileserver__user_secret":
                  ("fileserver_secret", "CLEARML_FILESERVER_SECRET")}
    for component in ("apiserver", "fileserver"):
        envs = {e["name"]: e for e in values[component]["extraEnvs"]}
        for name, (secret_key, setting) in wanted.items():
            if options.existing_secret:
                assert envs[name] == {"name": name, "valueFrom": {"secretKeyRef": {
                    "name": options.existing_secret, "key": secret_key}}}
            else:
                assert envs[name] == {"name": name, "value": settings.secret(setting)}


def test_every_secret_reference_points_at_a_key_the_manifest_holds(tmp_path, users):
    settings = make_settings(tmp_path)
    options = helm.K8sOptions(existing_secret="clearml-secrets")
    data = helm.secret_manifest(settings, options)["data"]
    values = helm.clearml_values(settings, users, options)
    refs = [e["valueFrom"]["secretKeyRef"] for c in ("apiserver", "fileserver") for e in values[c]["extraEnvs"]]
    assert refs and all(r["name"] == "clearml-secrets" and r["key"] in data for r in refs)
    # the keys chart 7.14.4 and chart clearml-agent 5.3.2 read from the existing Secret
    assert set(data) >= {"apiserver_key", "apiserver_secret", "fileserver_key", "fileserver_secret",
                         "secure_auth_token_secret", "test_user_key", "test_user_secret",
                         "agentk8sglue_key", "agentk8sglue_secret"}


def test_without_existing_secret_the_chart_keys_carry_the_kit_secrets(tmp_path, users):
    settings = make_settings(tmp_path)
    values = helm.clearml_values(settings, users, helm.K8sOptions())
    c = values["clearml"]
    assert (c["apiserverKey"], c["apiserverSecret"]) == (settings["CLEARML_APISERVER_KEY"],
                                                         settings["CLEARML_APISERVER_SECRET"])
    assert (c["fileserverKey"], c["fileserverSecret"]) == (settings["CLEARML_FILESERVER_KEY"],
                                                           settings["CLEARML_FILESERVER_SECRET"])
    assert c["secureAuthTokenSecret"] == settings["CLEARML_AUTH_TOKEN_SECRET"]
    assert (c["testUserKey"], c["testUserSecret"]) == (settings["CLEARML_TESTS_KEY"], settings["CLEARML_TESTS_SECRET"])
    assert "existingSecret" not in c
    envs = {e["name"]: e["value"] for e in values["apiserver"]["extraEnvs"]}
    assert envs["CLEARML__secure__http__session_secret__apiserver"] == settings["CLEARML_SESSION_SECRET"]
    assert envs["CLEARML__secure__credentials__services_agent__user_key"] == settings["CLEARML_AGENT_ACCESS_KEY"]
    agent = helm.agent_values(settings, helm.K8sOptions())["clearml"]
    assert agent == {"agentk8sglueKey": settings["CLEARML_AGENT_ACCESS_KEY"],
                     "agentk8sglueSecret": settings["CLEARML_AGENT_SECRET_KEY"]}


def test_with_existing_secret_no_env_secret_appears_in_the_values_files(tmp_path, users):
    settings = make_settings(tmp_path, **EXTERNAL)
    for options in (helm.K8sOptions(existing_secret="clearml-secrets"),
                    helm.K8sOptions(existing_secret="clearml-secrets", external_stores=True)):
        files = helm.render_bundle(settings, users, options)
        for name in (helm.VALUES_FILE, helm.AGENT_VALUES_FILE, helm.README_FILE):
            for key in SECRET_KEYS:
                value = settings.secret(key)
                assert value and value not in files[name], f"{key} found in {name}"
        assert yaml.safe_load(files[helm.VALUES_FILE])["clearml"]["existingSecret"] == "clearml-secrets"
        assert yaml.safe_load(files[helm.AGENT_VALUES_FILE])["clearml"] == {
            "existingAgentk8sglueSecret": "clearml-secrets"}


def test_the_secret_manifest_is_a_kubernetes_secret_holding_the_secrets(tmp_path):
    settings = make_settings(tmp_path, CLEARML_K8S_NAMESPACE="ml-team")
    manifest = yaml.safe_load(helm.dump_yaml(helm.secret_manifest(settings, helm.K8sOptions(existing_secret="s1"))))
    assert manifest["apiVersion"] == "v1" and manifest["kind"] == "Secret"
    assert manifest["metadata"]["name"] == "s1" and manifest["metadata"]["namespace"] == "ml-team"
    assert manifest["type"] == "Opaque"
    assert set(manifest) == {"apiVersion", "kind", "metadata", "type", "data"}
    decoded = {}
    for key, encoded in manifest["data"].items():
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", key)  # what the API server accepts as a Secret key
        decoded[key] = base64.b64decode(encoded, validate=True).decode()
    assert decoded == {key: settings.secret(setting) for key, setting in helm.SECRET_SOURCES.items()}
    assert set(helm.SECRET_SOURCES.values()) == set(SECRET_KEYS), "every generated secret is in the Secret"


# --- ingress, cookies, users, watchdog --------------------------------------------------------


@pytest.mark.parametrize("tls", ["off", "provided", "self-signed", "external"])
def test_ingress_per_component_with_unlimited_uploads_and_tls_when_on(tmp_path, users, tls):
    """The ingresses name the TLS Secret only when they end TLS; with `external` a proxy in front does."""
    settings = make_settings(tmp_path, CLEARML_TLS=tls, CLEARML_K8S_TLS_SECRET="my-cert")
    values = helm.clearml_values(settings, users, helm.K8sOptions())
    for component, label in (("apiserver", "api"), ("webserver", "app"), ("fileserver", "files")):
        ingress = values[component]["ingress"]
        assert ingress["enabled"] is True
        assert ingress["hostName"] == f"{label}.{DOMAIN}"
        assert ingress["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
        assert ingress.get("tlsSecretName") == (None if tls in ("off", "external") else "my-cert")
        assert "ingressClassName" not in ingress
    scheme = "http" if tls == "off" else "https"
    assert values["clearml"]["cookieDomain"] == DOMAIN  # the chart prepends the dot
    assert values["clearml"]["clientConfigurationApiUrl"] == f"{scheme}://api.{DOMAIN}"
    agent = helm.agent_values(settings, helm.K8sOptions())["agentk8sglue"]
    assert (agent["apiServerUrlReference"], agent["webServerUrlReference"], agent["fileServerUrlReference"]) == (
        f"{scheme}://api.{DOMAIN}", f"{scheme}://app.{DOMAIN}", f"{scheme}://files.{DOMAIN}")
    assert agent["clearmlcheckCertificate"] is (tls != "self-signed")
    conf = ConfigFactory.parse_string(values["apiserver"]["additionalConfigs"]["apiserver.conf"])
    assert conf.get("auth.cookies.secure") is (tls != "off")
    assert conf.get("auth.cookies.httponly") is True


def test_ingress_class_when_set(tmp_path, users):
    values = helm.clearml_values(make_settings(tmp_path, CLEARML_K8S_INGRESS_CLASS="nginx"), users, helm.K8sOptions())
    assert {values[c]["ingress"]["ingressClassName"] for c in ("apiserver", "webserver", "fileserver")} == {"nginx"}


def test_fixed_users_hashes_only_and_watchdog_through_additional_configs(tmp_path, users):
    settings = make_settings(tmp_path, CLEARML_WATCHDOG_THRESHOLD_SEC="3600", CLEARML_WATCHDOG_INTERVAL_SEC="60")
    configs = helm.clearml_values(settings, users, helm.K8sOptions())["apiserver"]["additionalConfigs"]
    assert set(configs) == {"apiserver.conf", "services.conf"}
    auth = ConfigFactory.parse_string(configs["apiserver.conf"]).get("auth.fixed_users")
    assert auth.get("enabled") is True and auth.get("pass_hashed") is True
    assert [(u["username"], u["password"], u["name"]) for u in auth.get("users")] == [
        (u.username, u.password_hash, u.name) for u in users]
    for text in configs.values():
        assert "correct horse" not in text and "battery staple" not in text
    watchdog = ConfigFactory.parse_string(configs["services.conf"]).get("tasks.non_responsive_tasks_watchdog")
    assert (watchdog["threshold_sec"], watchdog["watch_interval_sec"], watchdog["enabled"]) == (3600, 60, True)


def test_no_users_is_refused_unless_allowed_open(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(StackError, match="no web login user"):
        helm.render_bundle(settings, [], helm.K8sOptions())
    values = helm.clearml_values(settings, [], helm.K8sOptions(allow_open=True))
    conf = ConfigFactory.parse_string(values["apiserver"]["additionalConfigs"]["apiserver.conf"])
    assert conf.get("auth.fixed_users.enabled") is False


# --- persistence and stores -------------------------------------------------------------------


def test_persistence_sizes_and_storage_class(tmp_path, users):
    settings = make_settings(tmp_path, CLEARML_K8S_FILESERVER_SIZE="200Gi", CLEARML_K8S_MONGO_SIZE="20Gi",
                             CLEARML_K8S_ELASTIC_SIZE="100Gi", CLEARML_K8S_REDIS_SIZE="2Gi",
                             CLEARML_K8S_STORAGE_CLASS="standard")
    values = helm.clearml_values(settings, users, helm.K8sOptions())
    assert values["fileserver"]["storage"] == {"enabled": True, "data": {"size": "200Gi", "class": "standard"}}
    assert values["mongodb"] == {"enabled": True, "persistence": {"size": "20Gi", "storageClass": "standard"}}
    assert values["elasticsearch"]["volumeClaimTemplate"] == {
        "resources": {"requests": {"storage": "100Gi"}}, "storageClassName": "standard"}
    assert values["redis"]["master"]["persistence"] == {"size": "2Gi", "storageClass": "standard"}
    flagged = helm.clearml_values(settings, users, helm.K8sOptions(storage_class="fast-ssd"))
    assert flagged["mongodb"]["persistence"]["storageClass"] == "fast-ssd"
    assert flagged["fileserver"]["storage"]["data"]["class"] == "fast-ssd"
    default = helm.clearml_values(make_settings(tmp_path), users, helm.K8sOptions())
    assert "class" not in default["fileserver"]["storage"]["data"]
    assert "storageClass" not in default["mongodb"]["persistence"]


def test_external_stores_disable_the_bundled_ones_and_take_the_kit_settings(tmp_path, users):
    settings = make_settings(tmp_path, **EXTERNAL)
    values = helm.clearml_values(settings, users, helm.K8sOptions(external_stores=True))
    assert values["mongodb"] == values["elasticsearch"] == values["redis"] == {"enabled": False}
    ext = values["externalServices"]
    assert ext["mongodbConnectionStringBackend"] == "mongodb://mongo-0.db:27017,mongo-1.db:27017/backend?replicaSet=rs0"
    assert ext["mongodbConnectionStringAuth"] == "mongodb://mongo-0.db:27017,mongo-1.db:27017/auth?replicaSet=rs0"
    assert json.loads(ext["elasticsearchConnectionString"]) == [{"host": "es1.db", "port": 9200},
                                                                {"host": "es2.db", "port": 9201}]
    assert (ext["redisHost"], ext["redisPort"]) == ("redis.db", 6380)


def test_external_stores_without_their_settings_are_refused(tmp_path, users):
    with pytest.raises(StackError, match="CLEARML_EXTERNAL_MONGO_URI.*CLEARML_EXTERNAL_ELASTIC_HOSTS"):
        helm.render_bundle(make_settings(tmp_path), users, helm.K8sOptions(external_stores=True))


def test_a_mongo_password_cannot_hide_in_values_with_existing_secret(tmp_path, users):
    settings = make_settings(tmp_path, **{**EXTERNAL, "CLEARML_EXTERNAL_MONGO_URI": "mongodb://clearml:pw@db:27017"})
    with pytest.raises(StackError, match="holds a password"):
        helm.render_bundle(settings, users, helm.K8sOptions(external_stores=True, existing_secret="s"))
    files = helm.render_bundle(settings, users, helm.K8sOptions(external_stores=True))
    assert "mongodb://clearml:pw@db:27017/backend" in files[helm.VALUES_FILE]


@pytest.mark.parametrize("uri", ["mongodb://db:27017/backend", "http://db:27017", "mongodb://db 27017",
                                 "mongodb://db:27017/{x}", "mongodb://", "mongodb://db:27017\n"])
def test_bad_mongo_uris_are_refused_by_the_settings(tmp_path, uri):
    with pytest.raises(StackError, match="CLEARML_EXTERNAL_MONGO_URI"):
        make_settings(tmp_path, CLEARML_EXTERNAL_MONGO_URI=uri)


# --- images, queues ---------------------------------------------------------------------------


@pytest.mark.parametrize("ref, expected", [
    ("clearml/server:2.3.0", ("", "clearml/server", "2.3.0")),
    ("registry.local:5000/clearml/server:2.3.0", ("registry.local:5000", "clearml/server", "2.3.0")),
    ("localhost/clearml/server:2.3.0", ("localhost", "clearml/server", "2.3.0")),
    ("ghcr.io/org/mirror/server:2.3.0-1", ("ghcr.io", "org/mirror/server", "2.3.0-1")),
    ("myorg/server:2.3.0", ("", "myorg/server", "2.3.0")),
])
def test_split_image(ref, expected):
    assert helm.split_image(ref) == expected


def test_server_image_is_the_kits_on_every_component(tmp_path, users):
    settings = make_settings(tmp_path, IMAGE_REGISTRY="registry.local:5000/mirror/")
    values = helm.clearml_values(settings, users, helm.K8sOptions())
    for c in ("apiserver", "fileserver", "webserver"):
        image = values[c]["image"]
        assert f"{image['registry']}/{image['repository']}:{image['tag']}" == settings.image("server")
    assert values["global"]["imageRegistry"] == "registry.local:5000/mirror"
    assert helm.agent_values(settings, helm.K8sOptions())["global"]["imageRegistry"] == "registry.local:5000/mirror"
    assert "global" not in helm.clearml_values(make_settings(tmp_path), users, helm.K8sOptions())
    with pytest.raises(StackError, match="digest"):
        helm.split_image("clearml/server@sha256:" + "a" * 64)


def test_agent_queues_from_the_setting_or_default(tmp_path):
    settings = make_settings(tmp_path)
    assert k8s.agent_queues(settings) == "default"
    assert k8s.agent_queues(make_settings(tmp_path, CLEARML_AGENT_QUEUES="gpu, cpu")) == "gpu,cpu"
    assert k8s.agent_queues(make_settings(tmp_path, CLEARML_AGENT_QUEUES="gpu cpu")) == "gpu,cpu"
    (tmp_path / ".env").write_text("CLEARML_AGENT_QUEUES=services,gpu\n")
    from_file = load(environ={"CLEARML_ENV_FILE": str(tmp_path / ".env")})
    assert k8s.agent_queues(from_file) == "services,gpu"
    from_env = load(environ={"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_AGENT_QUEUES": "cpu"})
    assert k8s.agent_queues(from_env) == "cpu"  # environment wins, as elsewhere
    values = helm.agent_values(settings, helm.K8sOptions(agent_queues="gpu, cpu"))
    assert values["agentk8sglue"]["queue"] == "gpu,cpu"
    assert values["agentk8sglue"]["createQueueIfNotExists"] is True
    for bad in ("", "a b", "gpu,$(x)", "x" * 65, "q;rm"):
        with pytest.raises(StackError):
            helm.parse_queues(bad)


# --- refusals ---------------------------------------------------------------------------------

HOSTILE_DOMAINS = ["evil.com; rm -rf /", "a b.com", "x.com}", "{x}.com", "http://x.com", "x.com/p", "x.com:443",
                   "$(reboot).com", "x.com\nfoo: bar", "-x.com", "x..com", "x.com'"]


def raw_settings(tmp_path, **values: str) -> Settings:
    """Settings built without `load`'s checks, as a caller bypassing them would."""
    base = make_settings(tmp_path).values
    return Settings(values={**base, **values}, env_file=tmp_path / ".env")


@pytest.mark.parametrize("domain", HOSTILE_DOMAINS)
def test_hostile_domains_are_refused_by_the_settings_and_the_renderer(tmp_path, users, domain):
    with pytest.raises(StackError, match="CLEARML_DOMAIN"):
        make_settings(tmp_path, CLEARML_DOMAIN=domain)
    with pytest.raises(StackError, match="CLEARML_DOMAIN"):
        helm.render_bundle(raw_settings(tmp_path, CLEARML_DOMAIN=domain), users, helm.K8sOptions())


def test_an_unset_domain_is_refused_with_the_fix(tmp_path, users):
    with pytest.raises(StackError) as err:
        helm.render_bundle(make_settings(tmp_path, CLEARML_DOMAIN=""), users, helm.K8sOptions())
    assert "CLEARML_DOMAIN is not set" in err.value.message and "--domain" in err.value.fix


HOSTILE_NAMES = ['bob"\n}\nauth.fixed_users.enabled: false\n#', "a b", "x${y}", "", "-x", "ä" * 3, "x" * 65,
                 "a\u0000b"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_user_names_are_refused(tmp_path, users, name):
    settings = make_settings(tmp_path)
    with pytest.raises(StackError):
        helm.render_bundle(settings, [User(name, "x", users[0].password_hash)], helm.K8sOptions())


@pytest.mark.parametrize("display", ["line\nbreak", "x" * 101, "tab\there", "nul\u0000"])
def test_hostile_display_names_are_refused(tmp_path, users, display):
    with pytest.raises(StackError):
        helm.render_bundle(make_settings(tmp_path), [User("carol", display, users[0].password_hash)],
                           helm.K8sOptions())


@pytest.mark.parametrize("stored", ["plaintext", base64.b64encode(b"not bcrypt").decode(), "", "$2b$12$abc"])
def test_a_users_file_without_a_bcrypt_hash_is_refused(tmp_path, stored):
    with pytest.raises(StackError, match="password hash"):
        helm.render_bundle(make_settings(tmp_path), [User("carol", "Carol", stored)], helm.K8sOptions())


def test_duplicate_users_are_refused(tmp_path, users):
    with pytest.raises(StackError, match="twice"):
        helm.render_bundle(make_settings(tmp_path), [users[0], users[0]], helm.K8sOptions())


@pytest.mark.parametrize("name", ["Bad_Name", "a b", "../x", "x;y", "-x", "clearml-conf", "x" * 254])
def test_bad_existing_secret_names_are_refused(tmp_path, users, name):
    with pytest.raises(StackError):
        helm.render_bundle(make_settings(tmp_path), users, helm.K8sOptions(existing_secret=name))


@pytest.mark.parametrize("key, value", [("CLEARML_K8S_NAMESPACE", "Clear ML"), ("CLEARML_K8S_TLS_SECRET", "a/b"),
                                        ("CLEARML_K8S_STORAGE_CLASS", "x y"), ("CLEARML_K8S_MONGO_SIZE", "50GB"),
                                        ("CLEARML_K8S_INGRESS_CLASS", "{x}"),
                                        ("CLEARML_EXTERNAL_ELASTIC_HOSTS", "es1"),
                                        ("CLEARML_EXTERNAL_REDIS_HOST", "redis host"),
                                        ("CLEARML_EXTERNAL_MONGO_URI", "mongodb://db/{x}")])
def test_bad_kubernetes_settings_are_refused(tmp_path, users, key, value):
    with pytest.raises(StackError, match=key):
        make_settings(tmp_path, **{key: value})
    if key == "CLEARML_K8S_MONGO_SIZE":
        return
    external = key.startswith("CLEARML_EXTERNAL_")
    raw = raw_settings(tmp_path, **{**(EXTERNAL if external else {}), key: value})
    with pytest.raises(StackError, match=key):
        helm.render_bundle(raw, users, helm.K8sOptions(external_stores=external))


# --- README -----------------------------------------------------------------------------------


def test_readme_has_the_exact_helm_commands(tmp_path, users):
    settings = make_settings(tmp_path, CLEARML_K8S_NAMESPACE="ml", CLEARML_TLS="provided",
                             CLEARML_TLS_CERT="certs/my cert.pem", CLEARML_TLS_KEY="/etc/k.pem")
    text = helm.readme(settings, users, helm.K8sOptions(existing_secret="clearml-secrets"))
    assert "helm repo add clearml https://clearml.github.io/clearml-helm-charts\n" in text
    assert ("helm install clearml clearml/clearml --version 7.14.4 --namespace ml --values clearml-values.yaml\n"
            in text)
    assert ("helm install clearml-agent clearml/clearml-agent --version 5.3.2 --namespace ml "
            "--values clearml-agent-values.yaml\n" in text)
    assert ("helm upgrade clearml clearml/clearml --version 7.14.4 --namespace ml --values clearml-values.yaml\n"
            in text)
    assert "kubectl --namespace ml apply -f clearml-secrets.yaml\n" in text
    cert = str(tmp_path / "certs" / "my cert.pem")
    assert f"kubectl --namespace ml create secret tls clearml-tls '--cert={cert}' --key=/etc/k.pem\n" in text
    assert text.index("apply -f clearml-secrets.yaml") < text.index("helm install clearml ")


def test_readme_with_tls_ended_by_a_proxy_asks_for_no_tls_secret(tmp_path, users):
    settings = make_settings(tmp_path, CLEARML_TLS="external")
    text = helm.readme(settings, users, helm.K8sOptions())
    assert "create secret tls" not in text and "clearml-tls" not in text
    assert "CLEARML_TLS=external" in text and f"https://app.{DOMAIN}" in text


# --- the task, as users run it ----------------------------------------------------------------


@pytest.fixture(scope="module")
def installed_env(tmp_path_factory) -> str:
    """The settings file `inv install --domain` writes, made once for this module's task tests."""
    from tests.kit import new_kit

    template = new_kit(tmp_path_factory.mktemp("k8s-template"))
    template.inv("install", "--domain", DOMAIN)
    return template.env_file.read_text()


@pytest.fixture
def installed(kit, installed_env):
    """A kit as after `inv install --domain` and `inv users.add alice` (its own copy of the settings)."""
    kit.env_file.write_text(installed_env)
    kit.env_file.chmod(0o600)
    save_users(kit.settings().users_file, [User("alice", "alice", hash_password("correct horse", rounds=4))])
    return kit


def test_the_task_writes_the_files_with_their_modes(installed):
    kit = installed
    proc = kit.inv("k8s.values", "--existing-secret", "clearml-secrets", extra_env={"CLEARML_AGENT_QUEUES": "gpu,cpu"})
    out = kit.data_dir / "k8s"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"clearml-values.yaml": 0o600, "clearml-agent-values.yaml": 0o600,
                     "clearml-secrets.yaml": 0o600, "README.md": 0o644}
    settings = kit.settings()
    for name in ("clearml-values.yaml", "clearml-agent-values.yaml", "README.md"):
        text = (out / name).read_text()
        assert not [k for k in SECRET_KEYS if settings.secret(k) in text]
    for key in SECRET_KEYS:
        assert settings.secret(key) not in proc.stdout + proc.stderr
    assert yaml.safe_load((out / "clearml-agent-values.yaml").read_text())["agentk8sglue"]["queue"] == "gpu,cpu"
    secret = yaml.safe_load((out / "clearml-secrets.yaml").read_text())
    assert base64.b64decode(secret["data"]["fileserver_secret"]).decode() == settings["CLEARML_FILESERVER_SECRET"]


def test_rerun_is_idempotent_and_changes_need_force(installed):
    kit = installed
    out = kit.dir / "values-out"
    kit.inv("k8s.values", "--out", str(out), "--existing-secret", "s1")
    before = {p.name: p.read_text() for p in out.iterdir()}
    again = kit.inv("k8s.values", "--out", str(out), "--existing-secret", "s1")
    assert "up to date" in again.stderr
    refused = kit.inv("k8s.values", "--out", str(out), check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    kit.inv("k8s.values", "--out", str(out), "--force")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "clearml-agent-values.yaml", "clearml-values.yaml"]


@pytest.mark.parametrize("domain", ["evil.com; rm -rf /", "x.com}", "http://x.com", "a b.com"])
def test_the_task_refuses_a_hostile_domain_and_writes_nothing(installed, domain):
    kit = installed
    proc = kit.inv("k8s.values", check=False, extra_env={"CLEARML_DOMAIN": domain})
    assert proc.returncode != 0 and "CLEARML_DOMAIN" in proc.stderr
    assert not (kit.data_dir / "k8s").exists()


def test_the_task_refuses_a_hostile_user_name_and_writes_nothing(installed):
    kit = installed
    settings = kit.settings()
    good = hash_password("correct horse", rounds=4)
    save_users(settings.users_file, [User('eve"}\nauth { fixed_users { enabled: false } }\n#', "Eve", good)])
    proc = kit.inv("k8s.values", check=False)
    assert proc.returncode != 0 and "user name" in proc.stderr
    assert not (kit.data_dir / "k8s").exists()


def test_the_task_refuses_without_a_domain(installed):
    kit = installed
    proc = kit.inv("k8s.values", check=False, extra_env={"CLEARML_DOMAIN": ""})
    assert proc.returncode != 0
    assert "CLEARML_DOMAIN is not set" in proc.stderr and "inv install --domain" in proc.stderr
    assert not (kit.data_dir / "k8s").exists()


def test_the_task_needs_an_installed_kit(kit):
    proc = kit.inv("k8s.values", check=False, extra_env={"CLEARML_DOMAIN": DOMAIN})
    assert proc.returncode != 0 and "inv install" in proc.stderr


def test_the_out_dir_files_are_not_world_readable_even_with_a_loose_umask(installed):
    kit = installed
    old = os.umask(0)
    try:
        kit.inv("k8s.values")
    finally:
        os.umask(old)
    assert stat.S_IMODE((kit.data_dir / "k8s" / "clearml-values.yaml").stat().st_mode) == 0o600
