"""Every example runs to completion with the real ClearML SDK in its offline mode, and the offline
session it leaves behind (the zip the SDK writes for ``Task.import_offline_session``) holds what the
example says it reported: hyperparameters, last scalar values, plots, artifacts and models.

Each example runs as a subprocess with HOME and CLEARML_CONFIG_FILE in a temp dir and
CLEARML_OFFLINE_MODE=1; the four run side by side (the SDK waits ~10 s when it closes an offline task).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.kit import ROOT, new_kit

pytestmark = pytest.mark.contract

ARGS = {
    "base_task": ["--epochs", "8"],
    "train_cpu": ["--epochs", "6", "--samples", "200"],
    "pipeline_from_task": ["--epochs", "4", "--lr", "0.1"],
    "pipeline_of_pipelines": ["--runs", "2", "--epochs", "3", "--first-seed", "5"],
}


def sdk_environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    conf = home / "clearml.conf"
    conf.write_text("# empty on purpose: offline mode needs no server\n")
    return {**env, "HOME": str(home), "CLEARML_CONFIG_FILE": str(conf), "CLEARML_OFFLINE_MODE": "1"}


def run_example(name: str, home: Path) -> tuple[subprocess.CompletedProcess, dict, Path]:
    home.mkdir(parents=True)
    result = home / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *ARGS[name],
                           "--result-file", str(result)], env=sdk_environ(home), capture_output=True, text=True,
                          timeout=120, cwd=home)
    return proc, (json.loads(result.read_text()) if result.exists() else {}), home


def run_through_inv(base: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """`inv examples --offline` as a user runs it, with the kit's settings in a temp dir."""
    kit = new_kit(base / "kit")
    home = base / "home"
    home.mkdir(parents=True)
    kit.inv("install")
    return kit.inv("examples", "--offline", "--only", "train_cpu", extra_env={"HOME": str(home)}), home


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple]:
    """Every example run directly, plus one through `inv examples`, all side by side."""
    base = tmp_path_factory.mktemp("offline-examples")
    with ThreadPoolExecutor(max_workers=len(ARGS) + 1) as pool:
        futures = {name: pool.submit(run_example, name, base / name) for name in ARGS}
        futures["inv"] = pool.submit(run_through_inv, base / "inv")
    return {name: f.result() for name, f in futures.items()}


class Session:
    """One offline session as the SDK zipped it."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.zip = zipfile.ZipFile(str(self.folder) + ".zip")
        self.names = set(self.zip.namelist())
        self.task = json.loads(self.zip.read("task.json"))
        self.events = [e for line in self.zip.read("metrics.jsonl").decode().splitlines() if line.strip()
                       for e in json.loads(line)]

    def last_scalars(self) -> dict[str, float]:
        last: dict[str, tuple[int, float]] = {}
        for e in self.events:
            if e["type"] == "training_stats_scalar":
                key = f"{e['metric']}/{e['variant']}"
                if key not in last or e["iter"] >= last[key][0]:
                    last[key] = (e["iter"], e["value"])
        return {k: v for k, (_, v) in last.items()}

    def plots(self) -> set[str]:
        return {e["metric"] for e in self.events if e["type"] == "plot"}

    def hyperparameters(self) -> dict[str, dict[str, str]]:
        return {section: {k: v["value"] for k, v in values.items()}
                for section, values in (self.task.get("hyperparams") or {}).items()}

    def artifact(self, key: str) -> bytes:
        (art,) = [a for a in self.task["execution"]["artifacts"] if a["key"] == key]
        inside = Path(art["uri"]).relative_to(self.folder).as_posix()
        assert inside in self.names, f"artifact {key} at {inside} is not in the session zip"
        return self.zip.read(inside)


def session_of(result: dict) -> Session:
    (task,) = result["tasks"]
    return Session(task["offline_folder"])


@pytest.mark.parametrize("name", list(ARGS))
def test_example_completes_offline_and_writes_its_session(runs, name):
    proc, result, home = runs[name]
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert result["offline"] is True and result["example"] == name
    session = session_of(result)
    assert session.folder.is_dir() and session.folder.is_relative_to(home / ".clearml" / "cache" / "offline")
    assert "Offline session stored in" in proc.stdout + proc.stderr
    reported = result["reported"]
    scalars = session.last_scalars()
    for key, value in reported["scalars"].items():
        assert scalars[key] == pytest.approx(value), key
    assert set(reported.get("plots", [])) <= session.plots()
    keys = {a["key"] for a in session.task["execution"]["artifacts"]}
    assert set(reported["artifacts"]) <= keys
    for key in reported["artifacts"]:
        assert session.artifact(key)
    hp = session.hyperparameters()
    for key, value in reported["hyperparameters"].items():
        section, _, param = key.partition("/")
        assert hp[section][param] == value, key
    models = session.task.get("offline_output_models") or []
    assert sorted(m["init"]["name"] for m in models) == sorted(reported.get("models", []))
    for m in models:
        inside = Path(m["weights"]["weights_filename"]).relative_to(session.folder).as_posix()
        assert inside in session.names


def test_base_task_logs_every_kind_of_output(runs):
    _, result, _ = runs["base_task"]
    session = session_of(result)
    assert session.hyperparameters()["General"]["epochs"] == "8"
    assert {e["iter"] for e in session.events if e.get("metric") == "loss"} == set(range(8))
    assert session.artifact("points").decode().startswith("x,y\n")
    assert json.loads(session.artifact("summary"))["epochs"] == 8
    (model,) = session.task["offline_output_models"]
    weights = json.loads(session.zip.read(Path(model["weights"]["weights_filename"]).relative_to(session.folder).as_posix()))
    assert weights["slope"] == pytest.approx(result["reported"]["scalars"]["weights/slope"])
    # both artifacts were read back through the SDK and matched what was uploaded
    assert set(result["fetched_back"]) == {"summary", "points"}
    for key in ("summary", "points"):
        assert Path(result["fetched_back"][key]).is_relative_to(session.folder)
    out = proc_text(runs["base_task"][0])
    assert "artifact 'points' fetched back, identical" in out
    assert "offline: the artifacts were read back from the offline session" in out


def proc_text(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


MISMATCH = """
import sys
sys.path.insert(0, {examples!r})
import base_task
from clearml import Task
task = Task.init(project_name="p", task_name="mismatch")
with open("sent.csv", "w") as f:
    f.write("x,y\\n1,2\\n")
task.upload_artifact("points", "sent.csv", wait_on_upload=True)
with open("sent.csv", "w") as f:
    f.write("x,y\\n1,3\\n")  # what the example compares with no longer matches the stored copy
try:
    base_task.fetch_back(task, {{"points": "sent.csv"}})
except RuntimeError as exc:
    print("REFUSED:", exc)
    task.close()
    sys.exit(3)
"""


def test_base_tasks_fetch_back_fails_when_an_artifact_comes_back_different(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run([sys.executable, "-c", MISMATCH.format(examples=str(ROOT / "examples"))],
                          env=sdk_environ(home), capture_output=True, text=True, timeout=120, cwd=home)
    assert proc.returncode == 3, proc_text(proc)[-3000:]
    assert "REFUSED: artifact 'points' came back different from what was uploaded" in proc.stdout


def test_cpu_training_learns_and_stores_its_data_and_model(runs):
    _, result, _ = runs["train_cpu"]
    session = session_of(result)
    assert result["reported"]["scalars"]["accuracy/validation"] > 0.8
    assert session.artifact("dataset").decode().count("\n") == 201  # header + samples
    assert "confusion matrix" in session.plots()
    assert session.hyperparameters()["Args"]["samples"] == "200"


def test_pipeline_records_ui_parameters_and_resolves_step_references(runs):
    _, result, _ = runs["pipeline_from_task"]
    session = session_of(result)
    assert session.task["type"] == "controller"
    assert session.hyperparameters()["pipeline"] == {"lr": "0.1", "epochs": "4", "seed": "1", "confirm_seed": "2"}
    steps = json.loads(session.artifact("steps"))
    assert steps["train"]["parameters"] == {"General/lr": "0.1", "General/epochs": "4", "General/seed": "1"}
    # confirm reads train's resolved learning rate and uses its own seed
    assert steps["confirm"]["parameters"] == {"General/lr": "0.1", "General/epochs": "4", "General/seed": "2"}
    assert {"train: loss/train", "confirm: loss/train"} <= set(session.last_scalars())


def test_pipeline_of_pipelines_fans_out_runs_with_their_own_seeds(runs):
    _, result, _ = runs["pipeline_of_pipelines"]
    session = session_of(result)
    runs_artifact = json.loads(session.artifact("runs"))
    assert sorted(runs_artifact) == ["run_0", "run_1"]
    seeds = [(r["pipeline_parameters"]["seed"], r["pipeline_parameters"]["confirm_seed"]) for r in
             (runs_artifact["run_0"], runs_artifact["run_1"])]
    assert seeds == [("5", "6"), ("7", "8")]
    assert all(r["queue"] == "services" and r["pipeline_parameters"]["epochs"] == "3" for r in runs_artifact.values())
    assert len([k for k in session.last_scalars() if k.endswith("loss/train")]) == 4  # 2 runs x 2 steps


def test_inv_examples_offline_runs_through_the_kit_and_lists_the_sessions(runs):
    proc, home = runs["inv"]
    assert "1 example(s) ran offline" in proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("train_cpu: task")]
    folder = Path(row.split()[-1])
    assert folder.is_dir() and Path(str(folder) + ".zip").is_file() and folder.is_relative_to(home)
