"""cutover gate client for Python.

The protocol runs in the Rust client (``cutover-client``) behind a native
module; this package adds the Python-facing names and the PyFlink operator
(:mod:`cutover_gate.flink`).

One :class:`Client` per process serves every gate of that process; use
:func:`shared_client` to get it.
"""

import threading

from cutover_gate._native import DROP, EMIT, HOLD, Client, Gate

__all__ = ["Client", "Gate", "EMIT", "DROP", "HOLD", "shared_client"]

_clients = {}
_lock = threading.Lock()


def shared_client(endpoint, client_name=None):
    """The process's client for ``endpoint``, created on first use."""
    with _lock:
        client = _clients.get(endpoint)
        if client is None:
            client = Client(endpoint, client_name=client_name)
            _clients[endpoint] = client
        return client
