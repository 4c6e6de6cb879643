"""Pipeline from a task: clones the base task with parameters you can edit in the web UI.

What it shows: a ``PipelineController`` whose steps are clones of the task ``base_task.py`` made
(looked up by project and name), each with hyperparameters overridden from the pipeline's own
parameters. Those parameters (``lr``, ``epochs``, ``seed``, ``confirm_seed``) appear in the UI under
the pipeline's *Configuration > Hyperparameters > pipeline*: open the pipeline, *Run* it again from
the UI, change them, and the steps use the new values. The second step, ``confirm``, takes the
learning rate the first step really used (``${train.parameters.General/lr}``) and trains again with
another seed: steps can read each other's results.

Queues: the steps run on ``--queue`` (default ``default``): an agent must listen there
(``inv agents.up --queue default``). The controller runs here and waits for the steps
(``--controller-queue services`` hands it to the services agent instead).

Run it after the base task exists: ``python examples/base_task.py`` then
``python examples/pipeline_from_task.py``, or ``inv examples`` (which runs them in order).

Offline (``CLEARML_OFFLINE_MODE=1``) the SDK cannot clone anything (cloning is a server call), so
the same controller is built and its steps are *rehearsed* in this process: each step's parameters
are resolved exactly as written above and the base task's training runs with them, reported under
the step's name. This is what the test suite runs.

Self-contained apart from the offline rehearsal (which imports ``base_task.py`` beside it), so an
agent can run the pipeline from the stored script alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from clearml import Task
from clearml.automation import PipelineController

PROJECT = "clearml-lightning examples"
BASE_TASK = "base task"
PIPELINE_NAME = "pipeline from task"
VERSION = "1.0.0"

#: the pipeline's parameters (UI-editable); name -> (default, description)
PARAMETERS = {
    "lr": (0.05, "learning rate of the training step"),
    "epochs": (10, "epochs of every step"),
    "seed": (1, "data seed of the training step"),
    "confirm_seed": (2, "data seed of the confirm step"),
}

#: the DAG: each step clones the base task and overrides its `General` hyperparameters
STEPS = (
    {"name": "train", "parents": [],
     "parameter_override": {"General/lr": "${pipeline.lr}", "General/epochs": "${pipeline.epochs}",
                            "General/seed": "${pipeline.seed}"}},
    {"name": "confirm", "parents": ["train"],
     "parameter_override": {"General/lr": "${train.parameters.General/lr}", "General/epochs": "${pipeline.epochs}",
                            "General/seed": "${pipeline.confirm_seed}"}},
)

REF = re.compile(r"\$\{([^}]+)\}")


def resolve(value: str, pipeline_params: dict, done: dict) -> str:
    """``${pipeline.NAME}`` and ``${STEP.parameters.SECTION/NAME}`` as the controller resolves them."""

    def one(match: re.Match) -> str:
        ref = match.group(1)
        if ref.startswith("pipeline."):
            return str(pipeline_params[ref[len("pipeline."):]])
        step, _, rest = ref.partition(".parameters.")
        return str(done[step][rest])

    return REF.sub(one, str(value))


def step_parameters(pipeline_params: dict) -> dict:
    """Every step's resolved overrides, in DAG order (what the clones will run with)."""
    done: dict = {}
    for step in STEPS:
        done[step["name"]] = {k: resolve(v, pipeline_params, done) for k, v in step["parameter_override"].items()}
    return done


def build(args, base_task_id: str | None = None) -> PipelineController:
    """The controller with its parameters and steps (finds the base task on the server unless given)."""
    # an agent running this pipeline (or a clone of it) needs only this file, not the repository around it
    Task.force_store_standalone_script(True)
    pipe = PipelineController(name=args.name, project=args.project, version=VERSION, add_pipeline_tags=True)
    pipe.set_default_execution_queue(args.queue)
    if args.timeout_minutes:
        pipe.set_pipeline_execution_time_limit(args.timeout_minutes)
    for name, (default, description) in PARAMETERS.items():
        pipe.add_parameter(name=name, default=getattr(args, name), description=description)
    where = {"base_task_id": base_task_id} if base_task_id else {"base_task_project": args.project,
                                                                  "base_task_name": args.base_task}
    for step in STEPS:
        pipe.add_step(name=step["name"], parents=list(step["parents"]), parameter_override=dict(step["parameter_override"]),
                      execution_queue=args.queue, cache_executed_step=False, **where)
    return pipe


def rehearse(pipe: PipelineController) -> dict:
    """Offline: run every step's training here with the parameters its clone would get."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import base_task  # noqa: E402 - only needed offline

    params = pipe.get_parameters()
    pipe.task.connect(params, name="pipeline")  # what the controller records when it starts
    logger = pipe.task.get_logger()
    outcomes = {}
    resolved = step_parameters(params)
    dag = pipe.get_pipeline_dag()
    for name, overrides in resolved.items():
        assert dag[name].parameters == dict(next(s for s in STEPS if s["name"] == name)["parameter_override"])
        step_params = dict(base_task.DEFAULTS)
        step_params.update({k.split("/", 1)[1]: v for k, v in overrides.items() if k.startswith("General/")})
        outcome = base_task.run(step_params, logger, title_prefix=f"{name}: ")
        outcome.pop("points")
        outcomes[name] = {"parameters": overrides, **outcome}
        print(f"rehearsed step {name}: {overrides} -> loss {outcome['loss']:.4f}")
    pipe.task.upload_artifact("steps", outcomes, wait_on_upload=True)
    return outcomes


def node_entry(node, role: str) -> dict:
    """A step that ran, for `inv examples` (it links the id to the step's page in the web UI)."""
    entry = {"role": role, "id": node.executed, "name": node.name}
    task = getattr(getattr(node, "job", None), "task", None)
    if getattr(task, "project", None):
        entry["project"] = task.project
    return entry


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", default=PROJECT, help="project of the base task and of the pipeline")
    p.add_argument("--name", default=PIPELINE_NAME, help="pipeline name")
    p.add_argument("--base-task", default=BASE_TASK, help="name of the task to clone (made by base_task.py)")
    p.add_argument("--queue", default="default", help="queue the steps run on")
    p.add_argument("--controller-queue", default="", help="run the controller on this queue (e.g. services) "
                                                          "instead of here")
    p.add_argument("--timeout-minutes", type=float, default=30.0, help="stop the pipeline after this long")
    for name, (default, description) in PARAMETERS.items():
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default, help=description)
    p.add_argument("--result-file", default="", help="write what was created here, as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    offline = Task.is_offline()
    pipe = build(args, base_task_id="offline-rehearsal" if offline else None)
    result = {"example": "pipeline_from_task", "offline": offline}
    if offline:
        print("offline: cloning needs a server, so each step is rehearsed in this process")
        outcomes = rehearse(pipe)
        result["steps"] = outcomes
        result["tasks"] = [{"role": "pipeline", "id": pipe.task.id, "name": pipe.task.name,
                            "offline_folder": str(pipe.task.get_offline_mode_folder())}]
        result["reported"] = {
            "hyperparameters": {f"pipeline/{k}": str(v) for k, v in pipe.get_parameters().items()},
            "scalars": {f"{name}: loss/train": o["loss"] for name, o in outcomes.items()},
            "artifacts": ["steps"],
        }
        pipe.task.close()
    else:
        if args.controller_queue and Task.running_locally():
            pipe.start(queue=args.controller_queue)  # this process ends here; an agent runs the controller
        pipe.start_locally()  # here (or on that agent): steps go to their queue; returns when the pipeline ends
        pipe.stop()  # marks the pipeline completed, or failed when a step failed
        ok = pipe.is_successful()
        result["tasks"] = [{"role": "pipeline", "id": pipe.id, "name": pipe.task.name,
                            "url": pipe.task.get_output_log_web_page()}]
        result["tasks"] += [node_entry(node, f"step {node.name}") for node in pipe.get_processed_nodes()
                            if node.executed]
        result["successful"] = ok
        if not ok:
            print("the pipeline did not complete: open its page (above) for the failed step's log")
    if args.result_file and Task.running_locally():
        with open(args.result_file, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if offline or result.get("successful") else 1


if __name__ == "__main__":
    sys.exit(main())
