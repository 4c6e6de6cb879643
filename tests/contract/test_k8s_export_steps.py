"""The printed export steps, run by bash and tar: unpacking and the fileserver copy really move the files.

`kubectl` is replaced by a small stand-in on PATH that reproduces the one behaviour these steps use
from it: `kubectl ... exec -i POD -- CMD...` runs CMD with stdin attached, here with the pod's
`/mnt/fileserver` mapped to a local directory. Everything else it is asked is recorded and succeeds.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

from clearml_stack import k8s, secrets
from clearml_stack.settings import load
from tests.kit import require_tool

pytestmark = pytest.mark.contract

FILES = {
    "backup/data/fileserver/My Project/task.1/artifacts/model.pkl": b"\x00weights\xff",
    "backup/data/fileserver/My Project/task.1/debug/img $1.png": b"png-bytes",
    "backup/data/mongo_4/db/collection-0.wt": b"wt",
}

KUBECTL = r"""#!/usr/bin/env bash
# stand-in kubectl: records every call; `exec [-i] POD -- CMD...` runs CMD with /mnt/fileserver -> $FAKE_MNT
echo "$*" >> "$KUBECTL_LOG"
args=("$@")
for i in "${!args[@]}"; do
  if [ "${args[$i]}" = "--" ]; then
    cmd=("${args[@]:$((i + 1))}")
    cmd=("${cmd[@]//\/mnt\/fileserver/$FAKE_MNT}")
    if [ "${cmd[0]}" = "chown" ]; then exit 0; fi
    exec "${cmd[@]}"
  fi
done
exit 0
"""


def step_lines(steps: str, first_word: str) -> list[str]:
    return [line.strip() for line in steps.splitlines() if line.strip().startswith(first_word)]


def test_unpack_and_fileserver_copy_reproduce_the_files(tmp_path):
    require_tool("bash")
    require_tool("tar")
    archive = tmp_path / "my backups" / "clearml backup.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    settings = load(environ={"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_DOMAIN": "ml.example.com",
                             **secrets.fill_missing({})})
    work = tmp_path / "work dir"
    steps = k8s.restore_steps(settings, archive, k8s.inspect_archive(archive), tmp_path / "pod.yaml",
                              work_dir=str(work))

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    mnt = tmp_path / "pvc"
    mnt.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_MNT": str(mnt),
           "KUBECTL_LOG": str(tmp_path / "kubectl.log")}

    commands = step_lines(steps, "mkdir -p") + [line for line in step_lines(steps, "tar -C") if "exec -i" in line]
    assert len(commands) == 2, steps
    for command in commands:
        subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env, check=True, cwd=tmp_path)

    copied = {str(p.relative_to(mnt)): p.read_bytes() for p in mnt.rglob("*") if p.is_file()}
    prefix = "backup/data/fileserver/"
    assert copied == {name[len(prefix):]: data for name, data in FILES.items() if name.startswith(prefix)}
