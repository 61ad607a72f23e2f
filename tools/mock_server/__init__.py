"""Mock xiaozhi server: `python -m tools.mock_server --help`; tests use MockServer."""

from .server import MockServer  # noqa: F401
