"""The audit trail in words, for the admin's page: people by name (full name, else username), what happened in a
sentence rather than a stored dict. The stored events are unchanged; the CSV export keeps their raw detail.

The sentences are made at display time from the stored detail (codes, names and figures, never a sentence), in the
active language: an event recorded while English was active reads in Vietnamese on a Vietnamese page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from diagnosis.models import AuditAction, AuditEvent, Label, Role, Study
from diagnosis.numbers import percent
from diagnosis.site import alert_words

FILES = {
    "image": _("the original image"),
    "preview": _("the display preview"),
    "thumbnail": _("a thumbnail"),
    "heatmap": _("the Grad-CAM heatmap"),
    "overlay": _("the heatmap overlay"),
}
VIA = {"page": _("opened the study page"), "report": _("opened the printable report")}
EXPORTS = {
    "audit_csv": _("the audit trail"),
    "history_csv": _("their own studies (History)"),
    "worklist_csv": _("the Worklist"),
}
# The objects an event names by their type and id (a study and a user are named by their name instead); English
# shows the stored type as it is.
TARGET_TYPES = {
    "clinic": pgettext_lazy("audit target", "clinic"),
    "operatingpoint": pgettext_lazy("audit target", "operatingpoint"),
    "sitealert": pgettext_lazy("audit target", "sitealert"),
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
            unknown = gettext("study %(id)s") % {"id": e.target_id[:8]}
            name, patient = studies.get(e.target_id, (unknown, ""))
            out.append(Line(e, who or gettext("(unknown)"), name, describe(e, target_name), patient))
            continue
        kind = TARGET_TYPES.get(e.target_type, e.target_type)
        target = target_name or (f"{kind} {e.target_id}" if e.target_type else "")
        out.append(Line(e, who or gettext("(unknown)"), target, describe(e, target_name)))
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
    subject = target_name or d.get("user") or gettext("a user")
    action = e.action
    if action == AuditAction.UPLOAD:
        said = gettext("uploaded %(file)s") % {"file": d.get("file_name") or gettext("a file")}
        if d.get("batch"):
            said += gettext(", in batch %(batch)s") % {"batch": str(d["batch"])[:8]}
        dropped = d.get("dicom_dropped")
        if dropped:
            said += gettext("; left out of its DICOM header: %(values)s") % {"values": "; ".join(map(str, dropped))}
        return said
    if action == AuditAction.VIEW_STUDY:
        return str(VIA.get(str(d.get("via")), gettext("opened the study")))
    if action == AuditAction.VIEW_FILE:
        return gettext("loaded %(file)s") % {"file": FILES.get(str(d.get("file")), gettext("a file"))}
    if action == AuditAction.REVIEW:
        return _review(d)
    if action == AuditAction.EXPORT:
        what = EXPORTS.get(str(d.get("what")), gettext("a list"))
        return gettext("exported %(what)s as CSV, %(filters)s") % {
            "what": what,
            "filters": _filters(d.get("filters") or {}),
        }
    if action == AuditAction.PERMISSION_CHANGE:
        return _permission(d, subject)
    if action == AuditAction.UNLOCK:
        return gettext("reset the access of %(person)s (unlocked, new set-password link)") % {"person": subject}
    if action == AuditAction.DICOM_REFUSED:
        values = {"caller": d.get("calling_ae", "?"), "reason": d.get("reason") or gettext("no reason given")}
        if d.get("called_ae"):
            return gettext("refused DICOM caller %(caller)s (calling %(called)s): %(reason)s") % {
                **values,
                "called": d["called_ae"],
            }
        return gettext("refused DICOM caller %(caller)s: %(reason)s") % values
    if action == AuditAction.OPERATING_POINT:
        return _operating_point(d)
    if action == AuditAction.SITE_ALERT:
        return gettext("level %(level)s: %(message)s") % {
            "level": alert_words.level_text(str(d.get("level", ""))),
            "message": alert_words.message_text(str(d.get("message", ""))),
        }
    return words(d) if d else ""


def _operating_point(d: dict[str, Any]) -> str:
    """diagnosis.site.operating_points' events: `what` is "adopted", "reinstated version N" or "reverted to the
    model card's point"."""
    what = str(d.get("what", ""))
    values = {
        "version": d.get("version", "?"),
        "model": d.get("model_version", "?"),
        "threshold": percent(float(d.get("threshold", 0.0)), 1),
        "target": percent(float(d.get("target_sensitivity", 0.0))),
        "reason": _quoted(str(d.get("reason") or "")),
    }
    if what == "adopted":
        said = gettext(
            "adopted operating point version %(version)s for model %(model)s: threshold %(threshold)s, target "
            "sensitivity %(target)s; reason: %(reason)s"
        )
    elif what == "reverted to the model card's point":
        said = gettext(
            "retired operating point version %(version)s for model %(model)s, back to the model card's threshold; "
            "reason: %(reason)s"
        )
    elif what.startswith("reinstated version ") and what.rpartition(" ")[2].isdigit():
        values["earlier"] = what.rpartition(" ")[2]
        said = gettext(
            "reinstated operating point version %(earlier)s as version %(version)s for model %(model)s: threshold "
            "%(threshold)s, target sensitivity %(target)s; reason: %(reason)s"
        )
    else:
        return words(d)
    return said % values


def _language(code: object) -> str:
    """A clinic's language as the switcher names it (each in itself); blank: the browser's."""
    return str(dict(settings.LANGUAGES).get(str(code), code)) if code else gettext("follow the browser")


def _clinic_settings(d: dict[str, Any]) -> str:
    """diagnosis.locale_settings' event: the settings before and after (language, time zone)."""
    before, after = d.get("from"), d.get("to")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return words(d)
    changes = []
    if before.get("language") != after.get("language"):
        changes.append(
            gettext("language %(before)s → %(after)s")
            % {"before": _language(before.get("language")), "after": _language(after.get("language"))}
        )
    if before.get("time_zone") != after.get("time_zone"):
        changes.append(
            gettext("time zone %(before)s → %(after)s")
            % {"before": words(before.get("time_zone")), "after": words(after.get("time_zone"))}
        )
    return gettext("changed the clinic's settings: %(changes)s") % {"changes": "; ".join(changes) or words(after)}


def _label(value: object) -> str:
    return str(Label(value).label) if value in Label.values else str(value)


def _role(value: object) -> str:
    return str(Role(value).label).lower() if value in Role.values else str(value)


def _review(d: dict[str, Any]) -> str:
    model, final = _label(d.get("model_label")), _label(d.get("final_label"))
    if d.get("agrees"):
        said = gettext("agreed with the model: %(final)s") % {"final": final}
    else:
        said = gettext("disagreed with the model (%(model)s): %(final)s") % {"model": model, "final": final}
    note = str(d.get("note") or "")
    if note:
        said += gettext("; note: %(note)s") % {"note": _quoted(note)}
    previous = d.get("previous")
    if isinstance(previous, dict):
        earlier = _label(previous.get("final_label"))
        if previous.get("reviewer__username"):
            said += gettext("; revised a review that said %(label)s by %(reviewer)s") % {
                "label": earlier,
                "reviewer": previous["reviewer__username"],
            }
        else:
            said += gettext("; revised a review that said %(label)s") % {"label": earlier}
        before = str(previous.get("note") or "")
        if before != note and "note" in previous:  # audit rows older than the note's record say nothing of it
            said += (
                gettext(", whose note was %(note)s") % {"note": _quoted(before)}
                if before
                else gettext(", which had no note")
            )
    return said


def _quoted(text: str, at_most: int = 200) -> str:
    """A note in a sentence: on one line, cut at at_most characters (the export's detail column has it whole)."""
    flat = " ".join(text.split())
    return f"“{flat if len(flat) <= at_most else flat[: at_most - 1] + '…'}”"


# The filters an export was asked with, by their query parameter (named as the key reads, underscores as spaces);
# another is named by its key.
FILTER_NAMES = {
    "q": pgettext_lazy("filter", "q"),
    "label": pgettext_lazy("filter", "label"),
    "status": pgettext_lazy("filter", "status"),
    "acceptance": pgettext_lazy("filter", "acceptance"),
    "sort": pgettext_lazy("filter", "sort"),
    "created_from": pgettext_lazy("filter", "created from"),
    "created_to": pgettext_lazy("filter", "created to"),
    "reviewed": pgettext_lazy("filter", "reviewed"),
    "disagreement": pgettext_lazy("filter", "disagreement"),
    "patient_ref": pgettext_lazy("filter", "patient ref"),
    "action": pgettext_lazy("filter", "action"),
    "username": pgettext_lazy("filter", "username"),
    "at_from": pgettext_lazy("filter", "at from"),
    "at_to": pgettext_lazy("filter", "at to"),
    "target_id": pgettext_lazy("filter", "target id"),
    "thumbnails": pgettext_lazy("filter", "thumbnails"),
    "page": pgettext_lazy("filter", "page"),
}


def _filters(filters: dict[str, Any]) -> str:
    if not filters:
        return gettext("no filters")
    named = ", ".join(f"{FILTER_NAMES.get(k, k.replace('_', ' '))} {v}" for k, v in sorted(filters.items()))
    return gettext("filtered by %(filters)s") % {"filters": named}


def _permission(d: dict[str, Any], subject: str) -> str:
    change = d.get("change")
    if change == "invite":
        return gettext("invited %(person)s as %(role)s") % {"person": subject, "role": _role(d.get("role"))}
    if change == "role":
        return gettext("changed the role of %(person)s from %(before)s to %(after)s") % {
            "person": subject,
            "before": _role(d.get("from")),
            "after": _role(d.get("to")),
        }
    if change == "clinic settings":
        return _clinic_settings(d)
    if change == "deactivate":
        return gettext("deactivated %(person)s") % {"person": subject}
    if change == "reactivate":
        return gettext("reactivated %(person)s") % {"person": subject}
    if change == "django admin":
        return gettext("changed %(person)s in Django admin: from %(before)s to %(after)s") % {
            "person": subject,
            "before": words(d.get("from")),
            "after": words(d.get("to")),
        }
    return words(d)


def words(value: object) -> str:
    """Any stored value in words: keys without underscores, yes/no, lists joined; never a Python repr."""
    if isinstance(value, dict):
        if not value:
            return gettext("nothing")
        return "; ".join(f"{str(k).replace('_', ' ')}: {words(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(words(v) for v in value) or gettext("none")
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if value is None or value == "":
        return gettext("none")
    return str(value)
