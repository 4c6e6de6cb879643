"""Pipeline of pipelines: fans out N runs of the task pipeline at once, to load the server and agents.

What it shows: a ``PipelineController`` whose steps are themselves pipelines: N clones of the
pipeline ``pipeline_from_task.py`` made, each with its own seeds and the learning rate and epochs
of this pipeline's parameters (``lr``, ``epochs``: editable in the UI like any pipeline's). Every
child pipeline then clones the base task twice, so one run puts N child controllers and 2*N training
tasks through the API server, the file server and the agents, with N of them in flight together.
The pipeline page shows the fan-out; each child links to its own pipeline page.

How many runs: ``--runs N`` (``inv examples --scale N``). It shapes the DAG, so it is a flag rather
than a UI parameter.

Queues: the child pipelines' controllers run on ``--child-queue`` (default ``services``: the
kit's services agent runs many controllers side by side), their training steps on ``--queue``
(default ``default``: ``inv agents.up --queue default --replicas K`` decides how many run at
once). This controller runs here and waits for all of them.

Run it after ``pipeline_from_task.py`` has run once (its pipeline is what gets cloned), or
``inv examples``, which runs them in order.

Offline (``CLEARML_OFFLINE_MODE=1``) nothing can be cloned, so the same controller is built and each
child pipeline is rehearsed in this process with the parameters it would get (this is what the
test suite runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from clearml import Task
from clearml.automation import PipelineController

PROJECT = "clearml-lightning examples"
CHILD_PIPELINE = "pipeline from task"
PIPELINE_NAME = "pipeline of pipelines"
VERSION = "1.0.0"

#: this pipeline's parameters (UI-editable), forwarded to every child pipeline
PARAMETERS = {
    "lr": (0.05, "learning rate every child pipeline trains with"),
    "epochs": (10, "epochs of every training step"),
}


def run_overrides(index: int, first_seed: int, queue: str) -> dict:
    """What child pipeline ``index`` is cloned with: this pipeline's parameters and its own seeds."""
    return {
        "pipeline/lr": "${pipeline.lr}",
        "pipeline/epochs": "${pipeline.epochs}",
        "pipeline/seed": str(first_seed + 2 * index),
        "pipeline/confirm_seed": str(first_seed + 2 * index + 1),
        "Args/queue": queue,  # where the child sends its training steps
        "Args/controller_queue": "",  # the child's controller runs on the agent that picked it up
    }


def build(args, child_id: str) -> PipelineController:
    Task.force_store_standalone_script(True)
    pipe = PipelineController(name=args.name, project=args.project, version=VERSION, add_pipeline_tags=True)
    if args.timeout_minutes:
        pipe.set_pipeline_execution_time_limit(args.timeout_minutes)
    for name, (default, description) in PARAMETERS.items():
        pipe.add_parameter(name=name, default=getattr(args, name), description=description)
    for i in range(args.runs):
        pipe.add_step(name=f"run_{i}", base_task_id=child_id, execution_queue=args.child_queue,
                      parameter_override=run_overrides(i, args.first_seed, args.queue), cache_executed_step=False)
    return pipe


def find_child(args) -> str:
    """The id of the newest ``pipeline_from_task.py`` pipeline in the project."""
    try:
        return PipelineController.get(pipeline_project=args.project, pipeline_name=args.child).id
    except ValueError:
        sys.exit(f"no pipeline named {args.child!r} in project {args.project!r}: run "
                 "examples/pipeline_from_task.py once first (`inv examples` runs the examples in order)")


def rehearse(pipe: PipelineController) -> dict:
    """Offline: each child pipeline's steps run here with the parameters the clone would get."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import base_task  # noqa: E402 - only needed offline
    import pipeline_from_task as child  # noqa: E402

    params = pipe.get_parameters()
    pipe.task.connect(params, name="pipeline")  # what the controller records when it starts
    logger = pipe.task.get_logger()
    runs = {}
    for name, node in pipe.get_pipeline_dag().items():
        child_params = {k: default for k, (default, _) in child.PARAMETERS.items()}
        for key, value in node.parameters.items():
            if key.startswith("pipeline/"):
                child_params[key.split("/", 1)[1]] = child.resolve(value, params, {})
        steps = {}
        for step, overrides in child.step_parameters(child_params).items():
            step_params = dict(base_task.DEFAULTS)
            step_params.update({k.split("/", 1)[1]: v for k, v in overrides.items() if k.startswith("General/")})
            outcome = base_task.run(step_params, logger, title_prefix=f"{name}/{step}: ")
            steps[step] = {"parameters": overrides, "loss": outcome["loss"]}
        runs[name] = {"pipeline_parameters": child_params, "queue": node.queue, "steps": steps}
        print(f"rehearsed {name}: {child_params} -> " + ", ".join(f"{s} loss {o['loss']:.4f}" for s, o in steps.items()))
    pipe.task.upload_artifact("runs", runs, wait_on_upload=True)
    return runs


def node_entry(node, role: str) -> dict:
    """A child pipeline that ran, for `inv examples` (it links the id to its page in the web UI)."""
    entry = {"role": role, "id": node.executed, "name": node.name}
    task = getattr(getattr(node, "job", None), "task", None)
    if getattr(task, "project", None):
        entry["project"] = task.project
    return entry


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="how many child pipelines to fan out")
    p.add_argument("--project", default=PROJECT, help="project of the child pipeline and of this one")
    p.add_argument("--name", default=PIPELINE_NAME, help="this pipeline's name")
    p.add_argument("--child", default=CHILD_PIPELINE, help="name of the pipeline to clone")
    p.add_argument("--queue", default="default", help="queue the training steps run on")
    p.add_argument("--child-queue", default="services", help="queue the child pipelines' controllers run on")
    p.add_argument("--first-seed", type=int, default=1, help="seeds of the runs count up from here")
    p.add_argument("--timeout-minutes", type=float, default=60.0, help="stop the pipeline after this long")
    for name, (default, description) in PARAMETERS.items():
        p.add_argument("--" + name, type=type(default), default=default, help=description)
    p.add_argument("--result-file", default="", help="write what was created here, as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1:
        sys.exit("--runs must be 1 or more")
    offline = Task.is_offline()
    pipe = build(args, child_id="offline-rehearsal" if offline else find_child(args))
    result = {"example": "pipeline_of_pipelines", "offline": offline}
    if offline:
        print(f"offline: cloning needs a server, so the {args.runs} child pipelines are rehearsed in this process")
        runs = rehearse(pipe)
        result["runs"] = runs
        result["tasks"] = [{"role": "pipeline", "id": pipe.task.id, "name": pipe.task.name,
                            "offline_folder": str(pipe.task.get_offline_mode_folder())}]
        result["reported"] = {
            "hyperparameters": {f"pipeline/{k}": str(v) for k, v in pipe.get_parameters().items()},
            "scalars": {f"{run}/{step}: loss/train": s["loss"] for run, r in runs.items()
                        for step, s in r["steps"].items()},
            "artifacts": ["runs"],
        }
        pipe.task.close()
    else:
        pipe.start_locally()  # the child pipelines go to --child-queue; returns when all have ended
        pipe.stop()  # marks this pipeline completed, or failed when a child failed
        ok = pipe.is_successful()
        result["successful"] = ok
        result["tasks"] = [{"role": "pipeline", "id": pipe.id, "name": pipe.task.name,
                            "url": pipe.task.get_output_log_web_page()}]
        result["tasks"] += [node_entry(node, f"child {node.name}") for node in pipe.get_processed_nodes()
                            if node.executed]
        if not ok:
            print("not every child pipeline completed: open the pipeline page (above) to see which")
    if args.result_file and Task.running_locally():
        with open(args.result_file, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if offline or result.get("successful") else 1


if __name__ == "__main__":
    sys.exit(main())
