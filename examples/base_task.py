"""Base task: one of everything the web UI shows, from a few seconds of real (tiny) work.

What it shows: a task that logs hyperparameters (editable in the UI, section ``General``), scalars
per epoch (loss, slope, intercept), a plot (the data and the fitted line), a single value, two
artifacts (a summary dict and the data set as CSV) and a model (the fitted weights as JSON,
uploaded to the task's output destination). It then reads both artifacts back through the SDK
(``Task.get_task(id).artifacts[key]``: the server's record and a download from the file server)
and fails unless they are what it uploaded.

It fits a straight line to points it generates itself (pure Python, nothing downloaded) with plain
gradient descent.

Queue: none. It runs where you start it, which proves the client machine can reach the API and
file servers. It is also the template ``pipeline_from_task.py`` clones: those clones run on the
pipeline's queue (``--queue``, default ``default``), on whatever agent listens there.

Run it: ``python examples/base_task.py`` (with a clearml.conf or the CLEARML_* variables), or
``inv examples --only base_task``. Offline (``CLEARML_OFFLINE_MODE=1``) it writes an offline
session under ``~/.clearml/cache/offline`` instead of talking to a server.

This file is self-contained (only ``clearml`` and the standard library) so an agent can run a
clone of it from the stored script alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile

from clearml import OutputModel, Task

PROJECT = "clearml-lightning examples"
TASK_NAME = "base task"

DEFAULTS = {"lr": 0.05, "epochs": 20, "seed": 1, "points": 60, "true_slope": 2.0, "true_intercept": -1.0}


def make_points(count: int, seed: int, slope: float, intercept: float) -> list[tuple[float, float]]:
    """Points on a line plus noise, reproducible from the seed."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        x = rng.uniform(-2.0, 2.0)
        points.append((x, slope * x + intercept + rng.gauss(0.0, 0.3)))
    return points


def fit_line(points: list[tuple[float, float]], lr: float, epochs: int):
    """Gradient descent on mean squared error; yields (epoch, loss, slope, intercept) per epoch."""
    slope, intercept = 0.0, 0.0
    n = float(len(points))
    for epoch in range(epochs):
        grad_s = sum(2.0 * (slope * x + intercept - y) * x for x, y in points) / n
        grad_i = sum(2.0 * (slope * x + intercept - y) for x, y in points) / n
        slope -= lr * grad_s
        intercept -= lr * grad_i
        loss = sum((slope * x + intercept - y) ** 2 for x, y in points) / n
        yield epoch, loss, slope, intercept


def run(params: dict, logger, title_prefix: str = "") -> dict:
    """The work of one run, reporting through ``logger``; returns the final numbers.

    Pipelines reuse this (offline only) to rehearse their steps in one process.
    """
    points = make_points(int(params["points"]), int(params["seed"]), float(params["true_slope"]),
                         float(params["true_intercept"]))
    last = {}
    for epoch, loss, slope, intercept in fit_line(points, float(params["lr"]), int(params["epochs"])):
        logger.report_scalar(title_prefix + "loss", "train", value=loss, iteration=epoch)
        logger.report_scalar(title_prefix + "weights", "slope", value=slope, iteration=epoch)
        logger.report_scalar(title_prefix + "weights", "intercept", value=intercept, iteration=epoch)
        last = {"loss": loss, "slope": slope, "intercept": intercept, "epochs": epoch + 1}
    return {"points": points, **last}


def _offline_model_fix(model: OutputModel) -> None:
    """clearml 2.1.x offline: ``update_weights`` first reads ``published`` from the placeholder model
    it keeps until a server assigns an id, and the placeholder lacks ``locked``. A new model is not
    published; say so. Online this does nothing."""
    if Task.is_offline() and getattr(model, "_floating_data", None) is not None:
        model._floating_data.update(locked=False)


def fetch_back(task: Task, uploaded: dict) -> dict:
    """Read every artifact back through the SDK as any other machine would, and compare.

    ``uploaded``: key -> the object (compared after a JSON round trip) or the file path that was
    uploaded. Online this reads the task from the server and downloads from the file server, so the
    run proves the way back too; offline the SDK reads its own session. Raises when anything differs.
    """
    task.flush(wait_for_uploads=True)
    task_id = task.id
    stored = Task.get_task(task_id=task_id).artifacts
    fetched = {}
    for key, sent in uploaded.items():
        if key not in stored:
            raise RuntimeError(f"artifact {key!r} is not listed on task {task_id} (it lists {sorted(stored)})")
        if isinstance(sent, str):
            local = stored[key].get_local_copy()
            with open(sent, "rb") as f_sent, open(local, "rb") as f_back:
                same = f_sent.read() == f_back.read()
        else:
            same = stored[key].get() == json.loads(json.dumps(sent))
        if not same:
            raise RuntimeError(f"artifact {key!r} came back different from what was uploaded ({stored[key].url})")
        fetched[key] = stored[key].url
        print(f"artifact {key!r} fetched back, identical: {stored[key].url}")
    if Task.is_offline():
        print("offline: the artifacts were read back from the offline session (online they come from the file server)")
    return fetched


def write_result(path: str, result: dict) -> None:
    """What this run created, for `inv examples` (links) and the tests (offline session)."""
    if path and Task.running_locally():
        with open(path, "w") as f:
            json.dump(result, f, indent=2)


def task_entry(task: Task, role: str) -> dict:
    entry = {"role": role, "id": task.id, "name": task.name}
    if Task.is_offline():
        entry["offline_folder"] = str(task.get_offline_mode_folder())
    else:
        entry["url"] = task.get_output_log_web_page()
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=PROJECT, help="project to create the task in")
    parser.add_argument("--name", default=TASK_NAME, help="task name (pipelines look the template up by it)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="gradient descent epochs")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="learning rate")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="data set seed")
    parser.add_argument("--result-file", default="", help="write what was created here, as JSON")
    args = parser.parse_args(argv)

    # an agent running a clone needs only this file, never the repository it came from
    Task.force_store_standalone_script(True)
    task = Task.init(project_name=args.project, task_name=args.name, task_type=Task.TaskTypes.training,
                     reuse_last_task_id=False, auto_connect_arg_parser=False)
    params = dict(DEFAULTS, lr=args.lr, epochs=args.epochs, seed=args.seed)
    # connected as the `General` section: edit it in the UI on a clone, or override it from a pipeline
    params = task.connect(params)
    logger = task.get_logger()

    outcome = run(params, logger)
    points = outcome.pop("points")
    xs = sorted(x for x, _ in points)
    logger.report_scatter2d("fit", "data", scatter=points, iteration=0, xaxis="x", yaxis="y", mode="markers")
    logger.report_scatter2d("fit", "line", iteration=0, xaxis="x", yaxis="y", mode="lines",
                            scatter=[(xs[0], outcome["slope"] * xs[0] + outcome["intercept"]),
                                     (xs[-1], outcome["slope"] * xs[-1] + outcome["intercept"])])
    logger.report_single_value("final loss", outcome["loss"])

    summary = {"params": dict(params), **outcome}
    task.upload_artifact("summary", summary, wait_on_upload=True)
    work = tempfile.mkdtemp(prefix="clearml-example-")
    csv_path = os.path.join(work, "points.csv")
    with open(csv_path, "w") as f:
        f.write("x,y\n" + "".join(f"{x:.6f},{y:.6f}\n" for x, y in points))
    task.upload_artifact("points", csv_path, wait_on_upload=True)

    weights = os.path.join(work, "line.json")
    with open(weights, "w") as f:
        json.dump({"slope": outcome["slope"], "intercept": outcome["intercept"]}, f)
    fetched = fetch_back(task, {"summary": summary, "points": csv_path})

    model = OutputModel(task=task, name="line fit", framework="custom", comment="slope and intercept")
    _offline_model_fix(model)
    model.update_weights(weights_filename=weights, async_enable=False, auto_delete_file=False)

    result = {
        "example": "base_task",
        "offline": Task.is_offline(),
        "tasks": [task_entry(task, "task")],
        "reported": {
            "hyperparameters": {f"General/{k}": str(v) for k, v in params.items()},
            "scalars": {"loss/train": outcome["loss"], "weights/slope": outcome["slope"],
                        "weights/intercept": outcome["intercept"]},
            "plots": ["fit"],
            "artifacts": ["summary", "points"],
            "models": ["line fit"],
        },
        "fetched_back": fetched,
    }
    print(f"final loss {outcome['loss']:.4f}, slope {outcome['slope']:.3f}, intercept {outcome['intercept']:.3f}")
    task.close()
    write_result(args.result_file, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
