import pytest

from diagnosis.dispatch import inference_backlog
from diagnosis.task_names import RUN_INFERENCE
from xrayweb.celery import app as celery_app

pytestmark = pytest.mark.integration


def test_inference_backlog_reads_the_real_queue(redis_url: str) -> None:
    celery_app.control.purge()
    assert inference_backlog() == 0
    for job_id in (10**9, 10**9 + 1):  # ids no job has: a worker would skip them
        celery_app.send_task(RUN_INFERENCE, args=[job_id])
    assert inference_backlog() == 2
    celery_app.control.purge()
    assert inference_backlog() == 0
