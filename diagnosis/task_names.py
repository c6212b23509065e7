"""Celery task and queue names, declared once: read by the tasks, the job services, settings (routes and
the sweeper's schedule) and the launcher's worker. Plain constants, so settings can import them."""

RUN_INFERENCE = "diagnosis.tasks.run_inference"
SWEEP_STALE_JOBS = "diagnosis.tasks.sweep_stale_jobs"
SEND_RESULTS = "diagnosis.tasks.send_results"
SEND_REVIEW = "diagnosis.tasks.send_review"
PRUNE_ORPHAN_FILES = "diagnosis.tasks.prune_orphan_files"
MONITOR_SITES = "diagnosis.tasks.monitor_sites"
INFERENCE_QUEUE = "inference"
MAINTENANCE_QUEUE = "maintenance"
