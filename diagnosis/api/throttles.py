"""DRF's throttles, reading their rates from the settings when a request comes, not when DRF is imported.

DRF copies `DEFAULT_THROTTLE_RATES` into a class attribute at import time, so a changed setting (a test's
override, or `override_settings`) would be ignored; `api_settings` follows `setting_changed`.
"""

from __future__ import annotations

from typing import cast

from rest_framework import throttling
from rest_framework.settings import api_settings


def _rates() -> dict[str, str | None]:
    return cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)


class UserRateThrottle(throttling.UserRateThrottle):
    def get_rate(self) -> str | None:
        self.THROTTLE_RATES = _rates()
        return super().get_rate()


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    def get_rate(self) -> str | None:
        self.THROTTLE_RATES = _rates()
        return super().get_rate()
