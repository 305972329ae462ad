"""A shim (see pyodide_shims/README.md)."""


class InvalidTag(Exception):
    pass
