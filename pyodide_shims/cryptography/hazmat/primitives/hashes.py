"""A shim (see pyodide_shims/README.md): the hash algorithm HKDF is given, by name."""


class SHA256:
    name = "sha256"
    digest_size = 32
