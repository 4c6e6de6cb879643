"""invoke entry point: the tasks live in clearml_stack/tasks/ (run `inv --list`)."""

from clearml_stack.tasks import ns  # noqa: F401
