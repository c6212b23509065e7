"""An S3-compatible object store for the cluster on one machine (moto's server mode), in a process of its own:

    python -m tools.cluster.objectstore PORT

SIGUSR1 stops it listening (an outage: every call is refused) and SIGUSR2 starts it again on the same port with every
object kept, as an object store restarted on its disks would be; SIGTERM ends it. It prints "up PORT" at each start.
"""

from __future__ import annotations

import logging
import signal
import sys

from moto.server import ThreadedMotoServer


def main(port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # a line per call: ObjectStore.calls() counts them
    # Blocked before the server's thread starts, so that it inherits the mask and only sigwait() sees them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT})
    server: ThreadedMotoServer | None = _start(port)
    while True:
        received = signal.sigwait({signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT})
        if received == signal.SIGUSR2 and server is None:
            server = _start(port)
        elif received != signal.SIGUSR2 and server is not None:
            server.stop()  # moto's objects live in this process, not in the server: a new one finds them
            server = None
            print(f"down {port}", flush=True)
        if received in (signal.SIGTERM, signal.SIGINT):
            return


def _start(port: int) -> ThreadedMotoServer:
    server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    server.start()
    print(f"up {port}", flush=True)
    return server


if __name__ == "__main__":
    main(int(sys.argv[1]))
