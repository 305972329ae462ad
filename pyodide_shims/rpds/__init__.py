"""A shim (see pyodide_shims/README.md): rpds's persistent collections, from pyrsistent."""

from pyrsistent_as_rpds.pure import HashTrieMap, HashTrieSet, List, Queue  # noqa: F401
