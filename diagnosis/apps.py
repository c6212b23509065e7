from typing import Any

from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_table(using: str = "default", **kwargs: Any) -> None:
    """The database cache's table (where the rate limits count without REDIS_URL: xrayweb.conf.security), made by
    every `migrate` (make run, the deploy's migrate step) when it is missing; nothing when the cache is Redis."""
    call_command("createcachetable", database=using, verbosity=0)


class DiagnosisConfig(AppConfig):
    name = "diagnosis"

    def ready(self) -> None:
        from diagnosis import lockout, signals  # noqa: F401  (connects the audit receivers)

        post_migrate.connect(create_cache_table, sender=self)
