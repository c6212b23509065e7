from django.apps import AppConfig


class DiagnosisConfig(AppConfig):
    name = "diagnosis"

    def ready(self) -> None:
        from diagnosis import lockout, signals  # noqa: F401  (connects the audit receivers)
