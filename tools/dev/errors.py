class DevError(Exception):
    """A user-facing failure: the CLI prints it as one line and exits 1."""
