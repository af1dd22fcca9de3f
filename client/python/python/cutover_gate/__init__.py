"""cutover gate client for Python.

The protocol runs in the Rust client (``cutover-client``) behind a native
module; this package adds the Python-facing names and the PyFlink operator
(:mod:`cutover_gate.flink`).

One :class:`Client` per process serves every gate of that process; use
:func:`shared_client` to get it.
"""

import threading

from cutover_gate._native import DROP, EMIT, HOLD, Client, Gate

__all__ = ["Client", "Gate", "EMIT", "DROP", "HOLD", "shared_client", "release_client"]

_clients = {}
_users = {}
_lock = threading.Lock()


def shared_client(endpoint, client_name=None):
    """The process's client for ``endpoint``, created on first use. Each call
    counts a user; pair it with :func:`release_client`."""
    with _lock:
        client = _clients.get(endpoint)
        if client is None:
            client = Client(endpoint, client_name=client_name)
            _clients[endpoint] = client
        _users[endpoint] = _users.get(endpoint, 0) + 1
        return client


def release_client(endpoint):
    """Ends one use of the shared client; the last one sends a final progress
    report (finished gates included) and closes the session, so nothing is
    lost when the process exits right after."""
    with _lock:
        users = _users.get(endpoint, 0) - 1
        if users > 0:
            _users[endpoint] = users
            return
        _users.pop(endpoint, None)
        client = _clients.pop(endpoint, None)
    if client is not None:
        client.close()
