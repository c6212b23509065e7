"""Who holds a job, and whether that process still runs: the sweeper's and a re-claim's only way to tell a worker
that was killed from one that is slow."""

from __future__ import annotations

import logging
import os
import socket

from celery import current_app

logger = logging.getLogger(__name__)


def worker_id(nodename: str = "") -> str:
    """Who holds a job: "<celery node>|<machine>|<pid>", so a holder that is gone can be told (holder_gone)."""
    return f"{nodename}|{socket.gethostname()}|{os.getpid()}"


def holder_gone(holder: str, live_nodes: set[str] | None = None) -> bool:
    """True when the process named by `holder` (a worker_id) surely no longer runs: on this machine its pid is
    gone, or (live_nodes: the Celery nodes that answered a ping) its node did not answer."""
    try:
        node, machine, pid = holder.rsplit("|", 2)
    except ValueError:
        return False
    if live_nodes is not None and node and node not in live_nodes:
        return True
    if machine != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def live_workers() -> set[str] | None:
    """The Celery nodes that answer a ping now (None when the broker cannot be asked)."""
    try:
        replies = current_app.control.ping(timeout=1.0)
    except Exception:
        logger.warning("sweeper: could not ping the workers", exc_info=True)
        return None
    return {node for reply in replies or [] for node in reply}
