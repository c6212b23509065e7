"""The audit trail in words, for the admin's page: people by name (full name, else username), what happened in a
sentence rather than a stored dict. The stored events are unchanged; the CSV export keeps their raw detail."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from diagnosis.models import AuditAction, AuditEvent, Label, Role, Study

FILES = {
    "image": "the original image",
    "preview": "the display preview",
    "thumbnail": "a thumbnail",
    "heatmap": "the Grad-CAM heatmap",
    "overlay": "the heatmap overlay",
}
VIA = {"page": "opened the study page", "report": "opened the printable report"}
EXPORTS = {
    "audit_csv": "the audit trail",
    "history_csv": "their own studies (History)",
    "worklist_csv": "the Worklist",
}


def person(user: User) -> str:
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class Line:
    """One event as the page shows it."""

    event: AuditEvent
    who: str
    target: str  # the object in words ("" for none); a study's is its file name, linked by the template
    detail: str
    patient: str = ""  # a study's patient reference ("" for none)


def lines(events: Iterable[AuditEvent]) -> list[Line]:
    """The events in words, with the people and the studies they name looked up in one query each."""
    events = list(events)
    ids = {e.user_id for e in events if e.user_id} | {
        int(e.target_id) for e in events if e.target_type == "user" and e.target_id.isdigit()
    }
    names = {u.pk: person(u) for u in User.objects.filter(pk__in=ids)}
    studies = _studies(events)
    out = []
    for e in events:
        target_name = names.get(int(e.target_id)) if e.target_type == "user" and e.target_id.isdigit() else None
        who = names.get(e.user_id, e.username) if e.user_id else e.username
        if e.target_type == "study":
            name, patient = studies.get(e.target_id, (f"study {e.target_id[:8]}", ""))
            out.append(Line(e, who or "(unknown)", name, describe(e, target_name), patient))
            continue
        target = target_name or (f"{e.target_type} {e.target_id}" if e.target_type else "")
        out.append(Line(e, who or "(unknown)", target, describe(e, target_name)))
    return out


def _studies(events: list[AuditEvent]) -> dict[str, tuple[str, str]]:
    """study id -> (file name, patient reference) of the studies the events name, each in its event's clinic."""
    wanted = {(e.clinic_id, e.target_id) for e in events if e.target_type == "study" and e.clinic_id}
    if not wanted:
        return {}
    rows = Study.objects.filter(
        clinic_id__in={c for c, _ in wanted}, pk__in=[_uuid(t) for _, t in wanted if _uuid(t)]
    ).values_list("pk", "clinic_id", "original_name", "patient_ref")
    return {str(pk): (name, ref) for pk, clinic, name, ref in rows if (clinic, str(pk)) in wanted}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def describe(e: AuditEvent, target_name: str | None = None) -> str:
    """The event's detail as a sentence."""
    d: dict[str, Any] = e.detail if isinstance(e.detail, dict) else {"detail": e.detail}
    subject = target_name or d.get("user") or "a user"
    action = e.action
    if action == AuditAction.UPLOAD:
        batch = f", in batch {str(d['batch'])[:8]}" if d.get("batch") else ""
        dropped = d.get("dicom_dropped")
        left_out = f"; left out of its DICOM header: {'; '.join(map(str, dropped))}" if dropped else ""
        return f"uploaded {d.get('file_name', 'a file')}{batch}{left_out}"
    if action == AuditAction.VIEW_STUDY:
        return VIA.get(str(d.get("via")), "opened the study")
    if action == AuditAction.VIEW_FILE:
        return f"loaded {FILES.get(str(d.get('file')), 'a file')}"
    if action == AuditAction.REVIEW:
        return _review(d)
    if action == AuditAction.EXPORT:
        return f"exported {EXPORTS.get(str(d.get('what')), 'a list')} as CSV, {_filters(d.get('filters') or {})}"
    if action == AuditAction.PERMISSION_CHANGE:
        return _permission(d, subject)
    if action == AuditAction.UNLOCK:
        return f"reset the access of {subject} (unlocked, new set-password link)"
    if action == AuditAction.DICOM_REFUSED:
        called = f" (calling {d['called_ae']})" if d.get("called_ae") else ""
        return f"refused DICOM caller {d.get('calling_ae', '?')}{called}: {d.get('reason', 'no reason given')}"
    return words(d) if d else ""


def _label(value: object) -> str:
    return Label(value).label if value in Label.values else str(value)


def _role(value: object) -> str:
    return Role(value).label.lower() if value in Role.values else str(value)


def _review(d: dict[str, Any]) -> str:
    model, final = _label(d.get("model_label")), _label(d.get("final_label"))
    said = f"agreed with the model: {final}" if d.get("agrees") else f"disagreed with the model ({model}): {final}"
    note = str(d.get("note") or "")
    if note:
        said += f"; note: {_quoted(note)}"
    previous = d.get("previous")
    if isinstance(previous, dict):
        by = f" by {previous['reviewer__username']}" if previous.get("reviewer__username") else ""
        said += f"; revised a review that said {_label(previous.get('final_label'))}{by}"
        before = str(previous.get("note") or "")
        if before != note and "note" in previous:  # audit rows older than the note's record say nothing of it
            said += f", whose note was {_quoted(before)}" if before else ", which had no note"
    return said


def _quoted(text: str, at_most: int = 200) -> str:
    """A note in a sentence: on one line, cut at at_most characters (the export's detail column has it whole)."""
    flat = " ".join(text.split())
    return f"“{flat if len(flat) <= at_most else flat[: at_most - 1] + '…'}”"


def _filters(filters: dict[str, Any]) -> str:
    if not filters:
        return "no filters"
    return "filtered by " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(filters.items()))


def _permission(d: dict[str, Any], subject: str) -> str:
    change = d.get("change")
    if change == "invite":
        return f"invited {subject} as {_role(d.get('role'))}"
    if change == "role":
        return f"changed the role of {subject} from {_role(d.get('from'))} to {_role(d.get('to'))}"
    if change in ("deactivate", "reactivate"):
        return f"{change}d {subject}"
    if change == "django admin":
        return f"changed {subject} in Django admin: from {words(d.get('from'))} to {words(d.get('to'))}"
    return words(d)


def words(value: object) -> str:
    """Any stored value in words: keys without underscores, yes/no, lists joined; never a Python repr."""
    if isinstance(value, dict):
        if not value:
            return "nothing"
        return "; ".join(f"{str(k).replace('_', ' ')}: {words(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(words(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "none"
    return str(value)
