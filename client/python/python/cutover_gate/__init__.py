"""cutover gate client for Python.

The protocol runs in the Rust client (``cutover-client``) behind a native
module; this package adds the Python-facing names and the PyFlink operator
(:mod:`cutover_gate.flink`).

One session per coordinator endpoint serves every gate of the process:
:func:`shared_client` gives its :class:`Client` (counting a user) and
:func:`release_client` ends a use; the last one closes the session.
"""

from cutover_gate._native import (DROP, EMIT, HOLD, Client, Gate, check_endpoint, release_client,
                                  shared_client)

__all__ = ["Client", "Gate", "EMIT", "DROP", "HOLD", "shared_client", "release_client",
           "check_endpoint"]
