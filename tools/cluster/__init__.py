"""The service as separate nodes on one machine, sharing nothing but PostgreSQL, Redis and an S3 bucket: for the
cluster suite (tests/cluster) and its benchmark (tools/bench/cluster.py).

    python -m tools.cluster        # start one, print its addresses and logins, Ctrl-C ends it

Two web nodes (gunicorn) behind nginx (deploy/nginx.conf), two inference worker nodes, a maintenance node (the
sweeper's beat, housekeeping, PACS sends) and a DICOM listener node, each a process tree of its own in folders of
its own (tools.cluster.nodes); a database made for the run on the PostgreSQL server of DATABASE_URL (or the local
one), a Redis and an object store (moto's server mode) of its own (tools.cluster.services).
"""
