"""A shim (see pyodide_shims/README.md): only what the MCP SDK imports is here. Importing
anything else fails as if cryptography were absent, so libraries that merely probe for it
(PyJWT) carry on without it."""

raise ModuleNotFoundError("cryptography is a shim here: no x509", name="cryptography (shim)")
