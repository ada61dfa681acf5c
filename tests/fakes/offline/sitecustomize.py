"""A machine without a network, for a subprocess that has this folder on PYTHONPATH: every name
but loopback fails to resolve as it does offline (after HT_FAKE_RESOLVER_HANG seconds, like a
resolver waiting for a nameserver that is not there), and no query leaves the machine."""

import os
import socket
import time

_real = socket.getaddrinfo
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _offline(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in LOOPBACK:
        return _real(host, port, *args, **kwargs)
    time.sleep(float(os.environ.get("HT_FAKE_RESOLVER_HANG", "0")))
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


socket.getaddrinfo = _offline
