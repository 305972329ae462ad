"""The protocol core: MCP's and HTTP's rules as pure functions and state machines.

Nothing in this package does I/O or touches asyncio, in the sans-IO style of h11: callers
feed it headers, bytes and decoded messages, and get back decisions, state and bytes to
send. So the same rules run under every runtime. ``spec`` holds every constant named after
the specification; ``storage`` is the port the session state and the event log write
through.
"""
