"""What the cluster's database says, read by SQL from outside (the test process is none of the nodes): how the
studies ended, who judged them, which files the rows name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import psycopg

from diagnosis.models import FINAL_STATUSES, RESULT_FILE_FIELDS, STUDY_FILE_FIELDS


class Records:
    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def statuses(self, study_ids: Iterable[str]) -> Counter[str]:
        """How many of these studies' jobs are in each status (a study without a job counts as 'missing')."""
        ids = list(study_ids)
        found = dict(
            self.rows("SELECT study_id::text, status FROM diagnosis_inferencejob WHERE study_id::text = ANY(%s)", ids)
        )
        return Counter(found.get(i, "missing") for i in ids)

    def final(self, study_ids: Iterable[str]) -> bool:
        counts = self.statuses(study_ids)
        return sum(counts[s] for s in FINAL_STATUSES) == sum(counts.values())

    def judged_by(self, study_ids: Iterable[str]) -> Counter[str]:
        """The Celery node (worker0@host...) holding each of these studies' jobs last: the one that judged it."""
        holders = self.rows(
            "SELECT worker FROM diagnosis_inferencejob WHERE study_id::text = ANY(%s) AND status = 'done'",
            list(study_ids),
        )
        return Counter(str(w).split("@", 1)[0] for (w,) in holders)

    def batch_studies(self, batch_id: str) -> list[tuple[str, str]]:
        """(study id, file name) of every study of a batch."""
        return [
            (str(i), str(n))
            for i, n in self.rows("SELECT id, original_name FROM diagnosis_study WHERE batch_id::text = %s", batch_id)
        ]

    def stored_names(self) -> set[str]:
        """Every file name a study or a result row holds: what must be in the bucket."""
        names: set[str] = set()
        for table, fields in (("diagnosis_study", STUDY_FILE_FIELDS), ("diagnosis_result", RESULT_FILE_FIELDS)):
            for row in self.rows(f"SELECT {', '.join(fields)} FROM {table}"):  # noqa: S608 (our own field names)
                names |= {str(v) for v in row if v}
        return names

    def key_batch(self, key: str) -> tuple[str, int]:
        """The batch an Idempotency-Key holds and the status of its answer (0: none yet)."""
        [(batch, status)] = self.rows(
            "SELECT batch_id::text, status_code FROM diagnosis_idempotentresponse WHERE key = %s", key
        )
        return str(batch or ""), int(status)

    def age_lease(self, key: str, seconds: int) -> None:
        """Make the key's lease `seconds` older: the time a cut-off request's retry would otherwise wait."""
        self.rows(
            "UPDATE diagnosis_idempotentresponse SET lease = lease - make_interval(secs => %s) WHERE key = %s "
            "RETURNING id",
            seconds,
            key,
        )
