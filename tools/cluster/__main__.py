"""`python -m tools.cluster`: a cluster on this machine until Ctrl-C (tools.cluster)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tools.cluster.cluster import Cluster


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cluster-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            print(f"nginx in front of web nodes {cluster.web_ports}: {cluster.url}")
            print(f"DICOM listener: port {cluster.dicom_port} (calling AE title CLUSTERPACS)")
            print(f"log in as north-clinician / {cluster.password}; API tokens: {cluster.tokens}")
            print(f"logs: {cluster.logs}; database {cluster.db.name}; bucket {cluster.store.url}")
            for what, seconds in cluster.timings.items():
                print(f"{what}: {seconds:.1f} s")
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        finally:
            cluster.stop()


if __name__ == "__main__":
    raise SystemExit(main())
