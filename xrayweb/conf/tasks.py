"""Celery and the inference tasks: Redis is the broker only, the database is the record of every job. Batch
sizes, threads and time limits of the inference worker; the sweeper's deadlines; queues, routes and schedule."""

from __future__ import annotations

import re

from celery.schedules import crontab
from kombu import Queue

from diagnosis.task_names import (
    INFERENCE_QUEUE,
    MAINTENANCE_QUEUE,
    MONITOR_SITES,
    PRUNE_ORPHAN_FILES,
    RUN_INFERENCE,
    SEND_RESULTS,
    SEND_REVIEW,
    SWEEP_STALE_JOBS,
)
from xrayweb.env import env_int, env_str, env_url

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss"))
# Batched inference: one task claims up to INFERENCE_BATCH_SIZE queued jobs (interactive first, bulk
# round-robin between clinics) and judges them in one compiled pass; 1 is the per-job path. A batch of bulk jobs
# only may wait up to INFERENCE_BATCH_WAIT_MS for more to arrive; a batch holding an interactive study never waits.
INFERENCE_BATCH_SIZE = env_int("INFERENCE_BATCH_SIZE", 32, minimum=1, maximum=512)  # at most: one task's memory
INFERENCE_BATCH_WAIT_MS = env_int("INFERENCE_BATCH_WAIT_MS", 100, minimum=0, maximum=5000)
# Threads that decode and render a batch's images beside the model: 1 on a CPU worker (the model's framework owns
# the cores), several on a GPU worker, where decoding and rendering are what is left (docs/performance.md).
INFERENCE_THREADS = env_int("INFERENCE_THREADS", 1, minimum=1, maximum=64)
# What runs the model (worker.ml.engines): litert, the converted model on LiteRT with XNNPACK (the default: about a
# quarter of TensorFlow's CPU time for the same answers, and no TensorFlow in the worker; docs/performance.md), or
# tensorflow, the Keras model on Keras's backend (TensorFlow, the reference; JAX on the GPU worker, KERAS_BACKEND).
INFERENCE_RUNTIME = env_str("INFERENCE_RUNTIME", "litert", re.compile("litert|tensorflow"), "litert or tensorflow")
# While jobs are queued, a task goes on claiming batches for up to this many seconds, and judges each while a thread
# draws and stores the one before (diagnosis.tasks). 0: one batch a task, drawn after it is judged.
# At most a minute: the other tasks of the queue wait behind it.
INFERENCE_DRAIN_SECONDS = env_int("INFERENCE_DRAIN_SECONDS", 10, minimum=0, maximum=60)
# A task judging one study may take INFERENCE_TIME_LIMIT; a batch, INFERENCE_SECONDS_PER_STUDY more for each further
# study it may hold (decoding and rendering a 50-megapixel image take about a second on a CPU). A fixed limit
# failed every study of a big batch of big images (a GPU worker's 512) although none of them was at fault.
INFERENCE_TIME_LIMIT = env_int("INFERENCE_TIME_LIMIT", 120, minimum=10)
INFERENCE_SECONDS_PER_STUDY = 3
# A batch task that goes on with further batches claims the last of them at most INFERENCE_DRAIN_SECONDS in.
INFERENCE_TASK_TIME_LIMIT = INFERENCE_TIME_LIMIT + INFERENCE_SECONDS_PER_STUDY * (INFERENCE_BATCH_SIZE - 1)
INFERENCE_TASK_TIME_LIMIT += INFERENCE_DRAIN_SECONDS if INFERENCE_BATCH_SIZE > 1 else 0
SWEEP_INTERVAL = env_int("SWEEP_INTERVAL", 30, minimum=1)
QUEUED_STALE_SECONDS = env_int("QUEUED_STALE_SECONDS", 120, minimum=1)
RUNNING_STALE_SECONDS = env_int("RUNNING_STALE_SECONDS", INFERENCE_TASK_TIME_LIMIT + 60, minimum=1)
MAX_ATTEMPTS = env_int("MAX_ATTEMPTS", 3, minimum=1)

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT = "xrayweb.broker:Transport"  # Kombu's Redis transport, fixed for acks a stall times out
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not hang an upload: publish fails fast, the sweeper re-enqueues later. A Redis that is
# down refuses the connection at once; one that is stalled (SIGSTOP, a full network buffer) accepts it and
# never answers, so every socket operation, not only the connect, is time-limited, and so is the publish.
BROKER_SOCKET_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_SOCKET_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": RUNNING_STALE_SECONDS * 2,
    "socket_timeout": BROKER_SOCKET_TIMEOUT,
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 1, minimum=1)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60.0
# Named so that `celery purge` and app.control.purge() know them, not only the workers consuming them.
CELERY_TASK_DEFAULT_QUEUE = INFERENCE_QUEUE
CELERY_TASK_QUEUES = (Queue(INFERENCE_QUEUE), Queue(MAINTENANCE_QUEUE))
CELERY_TASK_ROUTES = {
    RUN_INFERENCE: {"queue": INFERENCE_QUEUE},
    SWEEP_STALE_JOBS: {"queue": MAINTENANCE_QUEUE},
    SEND_RESULTS: {"queue": MAINTENANCE_QUEUE},
    SEND_REVIEW: {"queue": MAINTENANCE_QUEUE},
    PRUNE_ORPHAN_FILES: {"queue": MAINTENANCE_QUEUE},
    MONITOR_SITES: {"queue": MAINTENANCE_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": SWEEP_STALE_JOBS, "schedule": float(SWEEP_INTERVAL)},
    # At a time of day, not every 24 h from beat's start: a service restarted more often than daily would never run it.
    "prune-orphan-files": {"task": PRUNE_ORPHAN_FILES, "schedule": crontab(hour=3, minute=17)},
    # Each clinic's model health for the day (diagnosis.site.monitoring), late enough that the day is over.
    "monitor-sites": {"task": MONITOR_SITES, "schedule": crontab(hour=23, minute=53)},
}
CELERY_TASK_ALWAYS_EAGER = False
