"""The audit trail: one append-only row per login, upload, view, review, export and permission change."""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from diagnosis.access import AnyUser, membership_of
from diagnosis.models import AuditAction, AuditEvent, Clinic


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the audit trail. embedded: a browser asked for an image to show in a page
    (Sec-Fetch-Dest: image), not a download, a new tab or a script."""

    ip: str | None = None
    user_agent: str = ""
    embedded: bool = False

    @classmethod
    def of(cls, request: HttpRequest | None) -> Origin:
        if request is None:
            return cls()
        return cls(
            ip=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            embedded=request.headers.get("Sec-Fetch-Dest") == "image",
        )


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or behind AUDIT_PROXY_COUNT trusted reverse proxies the X-Forwarded-For entry the outermost of
    them appended. Each proxy appends the address it received the request from, so that entry is counted from
    the right; whatever the client wrote itself sits to its left and is ignored."""
    ip = request.META.get("REMOTE_ADDR") or None
    if settings.AUDIT_TRUST_X_FORWARDED_FOR:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= settings.AUDIT_PROXY_COUNT:
            ip = hops[-settings.AUDIT_PROXY_COUNT]
    return ip


NO_ORIGIN = Origin()


CSV_COLUMNS = ["time", "user", "action", "target_type", "target_id", "detail", "ip", "user_agent"]


def record(
    user: AnyUser | None,
    action: AuditAction,
    target: Model | None = None,
    detail: dict[str, Any] | None = None,
    *,
    origin: Origin = NO_ORIGIN,
    username: str = "",
    clinic: Clinic | None = None,
) -> AuditEvent:
    """Append one event. The clinic is the acting user's unless given (a failed login names no user)."""
    return record_many(user, action, [(target, detail)], origin=origin, username=username, clinic=clinic)[0]


def record_many(
    user: AnyUser | None,
    action: AuditAction,
    targets: Iterable[tuple[Model | None, dict[str, Any] | None]],
    *,
    origin: Origin = NO_ORIGIN,
    username: str = "",
    clinic: Clinic | None = None,
) -> list[AuditEvent]:
    """record() for one action on many (target, detail) pairs, in one INSERT."""
    known = user if user is not None and user.is_authenticated else None
    if clinic is None and known is not None:
        membership = membership_of(known)
        clinic = membership.clinic if membership else None
    events = [
        AuditEvent(
            clinic=clinic,
            user=known,
            username=(known.get_username() if known else username)[:150],
            action=action,
            target_type=target._meta.model_name or "" if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            detail=detail or {},
            ip=_valid_ip(origin.ip),
            user_agent=origin.user_agent,
        )
        for target, detail in targets
    ]
    return AuditEvent.objects.bulk_create(events)


# The images a study page or report shows of its study. Loaded as images by a page the user opened within
# OPENING_WINDOW, they are that opening, already recorded (the page polls, and the viewer loads the heatmap again
# when it is shown); the original, and any file fetched otherwise (a download, a new tab, the API), is recorded.
PAGE_IMAGES = frozenset({"preview", "heatmap", "overlay"})
OPENING_WINDOW = timedelta(minutes=30)


def part_of_opening(user: AnyUser, study: Model, file: str, origin: Origin) -> bool:
    """Whether loading `file` of `study` is part of an opening of it the trail already has (see PAGE_IMAGES)."""
    if file not in PAGE_IMAGES or not origin.embedded or not user.is_authenticated:
        return False
    opened = AuditEvent.objects.filter(
        user_id=user.pk, action=AuditAction.VIEW_STUDY, target_type="study", target_id=str(study.pk)
    )
    return opened.filter(at__gte=timezone.now() - OPENING_WINDOW).exists()


def _valid_ip(raw: str | None) -> str | None:
    """A forwarded header can carry anything; keep only a real address."""
    try:
        return str(ipaddress.ip_address(raw)) if raw else None
    except ValueError:
        return None


def clinic_of_username(username: str) -> Clinic | None:
    """A failed login is shown to the clinic of the account it tried, when that account exists."""
    user = User.objects.filter(username=username).select_related("membership__clinic").first()
    membership = getattr(user, "membership", None) if user else None
    return membership.clinic if membership else None


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV lines, streamed: every cell quoted, and no part of a cell a spreadsheet could run as a formula (see
    safe_cell)."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell("" if v is None else str(v)) for v in row])


# The header in the active language (CSV_COLUMNS where no translation is active); the cells are as stored.
CSV_NAMES = {
    "time": pgettext_lazy("CSV column", "time"),
    "user": pgettext_lazy("CSV column", "user"),
    "action": pgettext_lazy("CSV column", "action"),
    "target_type": pgettext_lazy("CSV column", "target_type"),
    "target_id": pgettext_lazy("CSV column", "target_id"),
    "detail": pgettext_lazy("CSV column", "detail"),
    "ip": pgettext_lazy("CSV column", "ip"),
    "user_agent": pgettext_lazy("CSV column", "user_agent"),
}


def csv_rows(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The events as CSV lines, streamed (see csv_stream)."""
    return csv_stream([str(CSV_NAMES[c]) for c in CSV_COLUMNS], (_event_row(e) for e in events))


def _event_row(e: AuditEvent) -> list[object]:
    detail = json.dumps(e.detail, sort_keys=True)
    return [
        timezone.localtime(e.at).isoformat(),
        e.username,
        e.action,
        e.target_type,
        e.target_id,
        detail,
        e.ip or "",
        e.user_agent,
    ]


# A formula starts with = + - @ (or a tab or CR, which spreadsheets skip before one). A spreadsheet may split a cell
# at a separator other than the comma (`;` where the comma is the decimal mark, a tab, a line break; an importer
# told so ignores the quotes), and skips leading spaces: each of those starts a cell of its own.
_FORMULA_START = re.compile(r"(?:^|(?<=[,;\t\r\n])) *(?=[=+\-@\t\r])")


def safe_cell(value: str) -> str:
    """The cell with an apostrophe (a spreadsheet's mark for text) before every formula start: at its start, after
    leading spaces, and after any separator an importer may split it at. `x;=1+1` is written `x;'=1+1`."""
    return _FORMULA_START.sub(lambda m: m.group(0) + "'", value)
