"""CPU training run: a small neural network trained on a data set it makes itself, output uploaded.

What it shows: a training task the way real ones look in the web UI: train and validation loss and
accuracy per epoch, a confusion matrix, the data set as an artifact, and the trained weights as a
model, all uploaded to the configured default output URI (``sdk.development.default_output_uri`` in
clearml.conf, or ``CLEARML_DEFAULT_OUTPUT_URI``; the file server when neither is set). The task's
*Artifacts* and *Models* tabs show where they landed.

The network (2 inputs, one hidden layer, a sigmoid output) learns to separate two interleaved
half-moons generated from a seed. Pure Python: nothing downloaded, no GPU, no numpy needed.

Queue: none by default: it trains where you start it. ``--queue NAME`` hands it to an agent
listening on that queue (``Task.execute_remotely``), the agent then trains and uploads.

Run it: ``python examples/train_cpu.py [--epochs 30] [--samples 400]`` or
``inv examples --only train_cpu``. Offline (``CLEARML_OFFLINE_MODE=1``) the outputs go into the
offline session instead.

Self-contained (``clearml`` and the standard library only) so an agent can run it from the
stored script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile

from clearml import OutputModel, Task

PROJECT = "clearml-lightning examples"
TASK_NAME = "cpu training"


def make_moons(count: int, seed: int, noise: float) -> list[tuple[float, float, int]]:
    """Two interleaved half circles with Gaussian noise: (x, y, label)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = i % 2
        angle = rng.uniform(0.0, math.pi)
        if label == 0:
            x, y = math.cos(angle), math.sin(angle)
        else:
            x, y = 1.0 - math.cos(angle), 0.5 - math.sin(angle)
        rows.append((x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise), label))
    rng.shuffle(rows)
    return rows


class TinyNet:
    """2 -> hidden (tanh) -> 1 (sigmoid), trained by per-sample SGD on binary cross-entropy."""

    def __init__(self, hidden: int, seed: int) -> None:
        rng = random.Random(seed)
        self.w1 = [[rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)] for _ in range(hidden)]
        self.b1 = [0.0] * hidden
        self.w2 = [rng.gauss(0.0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)]
        self.b2 = 0.0

    def forward(self, x: float, y: float) -> tuple[list[float], float]:
        h = [math.tanh(w[0] * x + w[1] * y + b) for w, b in zip(self.w1, self.b1)]
        z = sum(wo * hi for wo, hi in zip(self.w2, h)) + self.b2
        return h, 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def step(self, x: float, y: float, label: int, lr: float) -> None:
        h, p = self.forward(x, y)
        dz = p - label  # d(BCE)/dz for a sigmoid output
        for j, hj in enumerate(h):
            dh = dz * self.w2[j] * (1.0 - hj * hj)
            self.w2[j] -= lr * dz * hj
            self.w1[j][0] -= lr * dh * x
            self.w1[j][1] -= lr * dh * y
            self.b1[j] -= lr * dh
        self.b2 -= lr * dz

    def evaluate(self, rows) -> tuple[float, float, list[list[int]]]:
        """Mean loss, accuracy and the confusion matrix [[tn, fp], [fn, tp]]."""
        loss, matrix = 0.0, [[0, 0], [0, 0]]
        for x, y, label in rows:
            _, p = self.forward(x, y)
            p = min(max(p, 1e-7), 1.0 - 1e-7)
            loss -= label * math.log(p) + (1 - label) * math.log(1.0 - p)
            matrix[label][int(p >= 0.5)] += 1
        return loss / len(rows), (matrix[0][0] + matrix[1][1]) / len(rows), matrix

    def weights(self) -> dict:
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}


def _offline_model_fix(model: OutputModel) -> None:
    """clearml 2.1.x offline: ``update_weights`` reads ``published`` from a placeholder model that
    lacks ``locked``; a new model is not published. Online this does nothing."""
    if Task.is_offline() and getattr(model, "_floating_data", None) is not None:
        model._floating_data.update(locked=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=PROJECT, help="project to create the task in")
    parser.add_argument("--name", default=TASK_NAME, help="task name")
    parser.add_argument("--samples", type=int, default=400, help="size of the generated data set")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument("--hidden", type=int, default=8, help="hidden units")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data set and the weights")
    parser.add_argument("--queue", default="", help="run on an agent listening on this queue instead of here")
    parser.add_argument("--result-file", default="", help="write what was created here, as JSON")
    args = parser.parse_args(argv)

    Task.force_store_standalone_script(True)
    # output_uri=True: models and artifacts go to the configured default output URI
    task = Task.init(project_name=args.project, task_name=args.name, task_type=Task.TaskTypes.training,
                     reuse_last_task_id=False, output_uri=True)
    if args.queue and not Task.is_offline():
        # stops here and continues on an agent; argparse values travel with the task (section Args)
        task.execute_remotely(queue_name=args.queue, exit_process=True)

    logger = task.get_logger()
    rows = make_moons(args.samples, args.seed, noise=0.15)
    split = int(len(rows) * 0.8)
    train, val = rows[:split], rows[split:]

    work = tempfile.mkdtemp(prefix="clearml-example-")
    data_path = os.path.join(work, "moons.csv")
    with open(data_path, "w") as f:
        f.write("x,y,label,split\n")
        f.writelines(f"{x:.6f},{y:.6f},{c},{'train' if i < split else 'val'}\n" for i, (x, y, c) in enumerate(rows))
    task.upload_artifact("dataset", data_path, wait_on_upload=True)

    net = TinyNet(args.hidden, args.seed)
    rng = random.Random(args.seed)
    for epoch in range(args.epochs):
        rng.shuffle(train)
        for x, y, label in train:
            net.step(x, y, label, args.lr)
        train_loss, train_acc, _ = net.evaluate(train)
        val_loss, val_acc, matrix = net.evaluate(val)
        logger.report_scalar("loss", "train", value=train_loss, iteration=epoch)
        logger.report_scalar("loss", "validation", value=val_loss, iteration=epoch)
        logger.report_scalar("accuracy", "train", value=train_acc, iteration=epoch)
        logger.report_scalar("accuracy", "validation", value=val_acc, iteration=epoch)
    logger.report_confusion_matrix("confusion matrix", "validation", matrix=matrix, iteration=args.epochs - 1,
                                   xlabels=["predicted 0", "predicted 1"], ylabels=["label 0", "label 1"])
    logger.report_single_value("validation accuracy", val_acc)

    weights_path = os.path.join(work, "tinynet.json")
    with open(weights_path, "w") as f:
        json.dump(net.weights(), f)
    model = OutputModel(task=task, name="tinynet", framework="custom", comment="2-layer net, pure Python")
    _offline_model_fix(model)
    model_url = model.update_weights(weights_filename=weights_path, iteration=args.epochs, async_enable=False,
                                     auto_delete_file=False)
    print(f"validation accuracy {val_acc:.3f}, loss {val_loss:.4f}; model stored at {model_url}")

    entry = {"role": "task", "id": task.id, "name": task.name}
    if Task.is_offline():
        entry["offline_folder"] = str(task.get_offline_mode_folder())
    else:
        entry["url"] = task.get_output_log_web_page()
    result = {
        "example": "train_cpu",
        "offline": Task.is_offline(),
        "tasks": [entry],
        "model_url": str(model_url),
        "output_uri": str(task.output_uri or ""),
        "reported": {
            "hyperparameters": {"Args/epochs": str(args.epochs), "Args/lr": str(args.lr),
                                "Args/samples": str(args.samples)},
            "scalars": {"loss/train": train_loss, "loss/validation": val_loss, "accuracy/train": train_acc,
                        "accuracy/validation": val_acc},
            "plots": ["confusion matrix"],
            "artifacts": ["dataset"],
            "models": ["tinynet"],
        },
    }
    task.close()
    if args.result_file and Task.running_locally():
        with open(args.result_file, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
