"""Actors and what every runtime shares to host them.

The session actor (``session_actor``) and its live connections (``connection``); the HTTP
front every runtime translates its I/O into (``front``); the operator settings
(``settings``); the storage backends (``memory_store``, ``sqlite_store``) and the storage
contract as executable checks (``storage_contract``). Nothing here knows which runtime it
runs in.
"""
