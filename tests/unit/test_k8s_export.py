"""`inv k8s.export-data`: a backup archive and the printed steps restoring it into the chart's volumes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from clearml_stack import k8s, secrets
from clearml_stack.errors import StackError
from clearml_stack.settings import load

DOMAIN = "clearml.example.com"


def make_settings(tmp_path, **overrides: str):
    values = {"CLEARML_DOMAIN": DOMAIN, **secrets.fill_missing({}), **overrides}
    return load(environ={"CLEARML_ENV_FILE": str(tmp_path / ".env"), **values})


def make_archive(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


FULL = {
    "clearml-backup/data/fileserver/proj/task.1/artifacts/model.pkl": b"weights",
    "clearml-backup/data/fileserver/proj/task.1/debug/img 1.png": b"png",
    "clearml-backup/data/mongo_4/db/collection-0.wt": b"wt",
    "clearml-backup/data/elastic_7/nodes/0/_state/x": b"es",
    "clearml-backup/config/secure.conf": b"secret",
}


def test_inspect_finds_each_store_under_any_prefix(tmp_path):
    layout = k8s.inspect_archive(make_archive(tmp_path / "b.tar.gz", FULL))
    assert layout == k8s.ArchiveLayout("clearml-backup/data/fileserver", "clearml-backup/data/mongo_4/db",
                                       "clearml-backup/data/elastic_7")
    flat = k8s.inspect_archive(make_archive(tmp_path / "c.tar", {"./data/fileserver/a": b"1"}, "w"))
    assert flat == k8s.ArchiveLayout("data/fileserver", None, None)


def test_inspect_refuses_what_is_not_a_backup(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar at all")
    with pytest.raises(StackError, match="not a readable tar"):
        k8s.inspect_archive(junk)
    with pytest.raises(StackError, match="holds none of"):
        k8s.inspect_archive(make_archive(tmp_path / "other.tar.gz", {"home/user/notes.txt": b"x"}))
    with pytest.raises(StackError, match="no archive"):
        k8s.inspect_archive(tmp_path / "missing.tar.gz")


def test_steps_name_what_they_move_and_what_they_do_not(tmp_path):
    settings = make_settings(tmp_path, CLEARML_K8S_NAMESPACE="ml")
    archive = make_archive(tmp_path / "b.tar.gz", FULL)
    steps = k8s.restore_steps(settings, archive, k8s.inspect_archive(archive), tmp_path / "pod.yaml")
    assert "the kit has not run them\nagainst a cluster" in steps and "does not talk to your cluster" in steps
    assert "inv k8s.values --existing-secret clearml-secrets" in steps
    assert ("kubectl --namespace ml scale deployment clearml-apiserver clearml-apiserver-asyncdelete "
            "clearml-fileserver --replicas=0") in steps
    assert "/tmp/clearml-export/clearml-backup/data/fileserver" in steps
    assert f"-v /tmp/clearml-export/clearml-backup/data/mongo_4/db:/data/db {settings.image('mongo')}" in steps
    assert "mongorestore --archive --gzip --drop" in steps and "deployment/clearml-mongodb" in steps
    assert settings.image("elastic") in steps and "cannot open them" in steps
    assert "Redis holds caches" in steps


def test_steps_for_a_partial_archive_say_what_is_missing(tmp_path):
    settings = make_settings(tmp_path)
    archive = make_archive(tmp_path / "b.tar.gz", {"data/fileserver/a": b"1"})
    steps = k8s.restore_steps(settings, archive, k8s.inspect_archive(archive), tmp_path / "pod.yaml")
    assert "holds no data/mongo_4/db; nothing to restore" in steps
    assert "holds no data/elastic_7; nothing to restore" in steps
    assert "mongorestore" not in steps


def test_the_helper_pod_mounts_the_charts_fileserver_claim(tmp_path):
    pod = k8s.restore_pod_manifest(make_settings(tmp_path, CLEARML_K8S_NAMESPACE="ml"))
    assert (pod["apiVersion"], pod["kind"], pod["metadata"]["namespace"]) == ("v1", "Pod", "ml")
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "clearml-fileserver-data"
    mount = pod["spec"]["containers"][0]["volumeMounts"][0]
    assert (mount["name"], mount["mountPath"]) == (pod["spec"]["volumes"][0]["name"], "/mnt/fileserver")


def test_without_an_archive_the_export_makes_one_with_the_backup_function(tmp_path):
    settings = make_settings(tmp_path)
    archive = make_archive(tmp_path / "made.tar.gz", FULL)
    calls = []

    def make(s):
        calls.append(s)
        return archive

    result = k8s.export_data(settings, out_dir=tmp_path / "out", make_archive=make)
    assert calls == [settings] and result.archive == archive
    assert yaml.safe_load(result.pod_file.read_text()) == k8s.restore_pod_manifest(settings)


def test_the_task_prints_the_steps_for_a_given_archive(kit):
    kit.inv("install", "--domain", DOMAIN)
    archive = make_archive(kit.dir / "backup.tar.gz", FULL)
    proc = kit.inv("k8s.export-data", "--archive", str(archive))
    assert proc.stdout.startswith(f"Backup archive: {archive}")
    assert (kit.data_dir / "k8s" / "clearml-restore-pod.yaml").is_file()
    settings = kit.settings()
    for key in ("CLEARML_APISERVER_SECRET", "CLEARML_FILESERVER_SECRET", "CLEARML_AGENT_SECRET_KEY"):
        assert settings.secret(key) not in proc.stdout + proc.stderr
