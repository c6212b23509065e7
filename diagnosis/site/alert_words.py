"""Model health alerts in the active language, for the pages (the site page, the dashboard, the admins' banner,
the audit page) and the admins' e-mail (in the clinic's language).

An alert is stored in English (SiteAlert.message, the audit event's detail): worker.ml.drift and
diagnosis.site.monitoring write its sentence, and the monitoring report keeps it so. The pages say it again at
display time from its structure: the kind and the level are codes with words of their own, and each known
sentence is a pattern whose figures are read back and written in the locale's format ("0.730" reads "0,730" in
Vietnamese), as diagnosis.refusal_words does for refusals. A sentence no pattern knows is shown as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_noop, pgettext_lazy

from diagnosis.models import SiteAlert
from diagnosis.refusal_words import figure as plain_figure
from worker.ml import drift

# The levels as users read them (AlertLevel's codes; the English pages show the code itself).
LEVELS: dict[str, Promise] = {
    "act": pgettext_lazy("alert level", "act"),
    "watch": pgettext_lazy("alert level", "watch"),
}
# The kinds (the rules that fire), as the dashboard's tags name them; English shows the code.
KINDS: dict[str, Promise] = {
    "psi": pgettext_lazy("alert kind", "psi"),
    "js": pgettext_lazy("alert kind", "js"),
    "positive_rate": pgettext_lazy("alert kind", "positive_rate"),
    "rejection_rate": pgettext_lazy("alert kind", "rejection_rate"),
    "sensitivity": pgettext_lazy("alert kind", "sensitivity"),
    "disagreement": pgettext_lazy("alert kind", "disagreement"),
}
# The words the sentences put in their placeholders: drift's histogram measures and its rates (the kind with spaces).
NAMES: dict[str, Promise] = {
    "population stability index": pgettext_lazy("drift measure", "population stability index"),
    "Jensen-Shannon distance": pgettext_lazy("drift measure", "Jensen-Shannon distance"),
    "positive rate": pgettext_lazy("drift rate", "positive rate"),
    "rejection rate": pgettext_lazy("drift rate", "rejection rate"),
}

# The stored sentences: worker.ml.drift's (distribution_alerts, rate_alerts), then monitoring's agreement rules.
# %(name)s and %(level)s are words (NAMES, LEVELS); every other placeholder is a figure.
SENTENCES = (
    gettext_noop("The probability distribution moved: %(name)s %(value)s >= %(threshold)s (%(level)s)."),
    gettext_noop(
        "The %(name)s moved from %(reference)s to %(current)s (change %(change)s, p = %(p)s; %(level)s at "
        "%(threshold)s)."
    ),
    gettext_noop(
        "Sensitivity in the verification sample is %(value)s (95 %% up to %(high)s), below the target %(target)s."
    ),
    gettext_noop("Reviewers disagreed with %(share)s of the verification sample (watch above %(limit)s)."),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
# A figure as Python's formats write it: a sign (":+"), decimals, an exponent (":.2g" of a small p), a percent sign.
_FIGURE = re.compile(r"(?P<sign>[-+]?)(?P<number>\d+(?:\.\d+)?)(?P<exponent>e[-+]\d+)?(?P<percent>%?)")
_FIGURE_TEXT = r"[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?%?"
_WORDS = ("name", "level")


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each sentence's msgid and the pattern that reads its figures and words back from the stored English."""
    out = []
    for msgid in SENTENCES:
        parts, at = [], 0
        for m in _PLACEHOLDER.finditer(msgid):
            parts.append(re.escape(msgid[at : m.start()]))
            name = m.group(1)
            if name is None:
                parts.append("%")
            else:
                parts.append(f"(?P<{name}>{'.+?' if name in _WORDS else _FIGURE_TEXT})")
            at = m.end()
        parts.append(re.escape(msgid[at:]))
        out.append((msgid, re.compile("".join(parts))))
    return tuple(out)


def figure(text: str) -> str:
    """A stored figure ("0.730", "+0.123", "2.1e-05", "73.0%") in the active locale's format, as many decimals."""
    m = _FIGURE.fullmatch(text)
    if m is None:
        return text
    return f"{m['sign']}{plain_figure(m['number'])}{m['exponent'] or ''}{m['percent']}"


def _word(table: dict[str, Promise], code: str) -> str:
    return str(table[code]) if code in table else code


def level_text(level: str) -> str:
    """'act' / 'watch' in the active language."""
    return _word(LEVELS, level)


def kind_text(kind: str) -> str:
    return _word(KINDS, kind)


def message_text(message: str) -> str:
    """A stored alert sentence in the active language (as stored when no pattern knows it)."""
    for msgid, pattern in _patterns():
        m = pattern.fullmatch(message)
        if m is None:
            continue
        values = {}
        for name, value in m.groupdict().items():
            if name == "level":
                values[name] = level_text(value)
            elif name == "name":
                values[name] = _word(NAMES, value)
            else:
                values[name] = figure(value)
        return gettext(msgid) % values
    return message


@dataclass(frozen=True)
class ShownAlert(drift.Alert):
    """An alert as a page shows it: kind, level and message in words (the fields the templates print), with the
    stored codes beside them (kind_code, level_code) and, for a recorded alert, its day."""

    kind_code: str = ""
    level_code: str = ""
    day: date | None = None


def shown(alert: drift.Alert) -> ShownAlert:
    """An alert just computed (monitoring.health) in words."""
    return ShownAlert(
        kind=kind_text(alert.kind),
        level=level_text(alert.level),
        value=alert.value,
        threshold=alert.threshold,
        message=message_text(alert.message),
        kind_code=alert.kind,
        level_code=alert.level,
    )


def shown_row(row: SiteAlert) -> ShownAlert:
    """A recorded alert (the banner) in words."""
    alert = drift.Alert(row.kind, row.level, row.value, row.limit, row.message)
    return replace(shown(alert), day=row.day)
