"""clearml-lightning: a deploy kit for a secure, self-hosted ClearML server."""

__version__ = "0.1.0"
