"""The local runtime: actors in this process, a raw ASGI adapter, the command line."""
