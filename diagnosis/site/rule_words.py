"""The site's rules in the active language, for the site page.

The rules are stated in English by the code that applies them (worker.ml.site.PROPOSAL_RULE, worker.ml.drift's
DRIFT_RULES: Django-free; monitoring's AGREEMENT_RULES and INPUT_RULES), where the API, the audit trail and the
monitoring report read them. Here each is a message of the catalog whose figures are filled from the same
constants, in the locale's format; in English it reads exactly as the constant (tests/diagnosis/site hold them so).
"""

from __future__ import annotations

from django.utils.translation import gettext

from diagnosis.numbers import percent
from diagnosis.refusal_words import figure
from diagnosis.site import monitoring
from worker.ml import drift, site


def _figure(value: float, written: str | None = None) -> str:
    """A constant as Python writes it (or as `written`), in the locale's format: 0.995 reads 0,995 in Vietnamese."""
    return figure(written if written is not None else str(value))


def proposal_rule() -> str:
    return gettext(
        "From this site's own labelled studies (at least %(least)s of each class; fewer is shown as not enough), "
        "the probability is recalibrated with a Platt map P = sigmoid(a x logit + b), fitted by maximum likelihood "
        "with a tiny penalty on a and b, and the proposed threshold is the highest recalibrated probability at which "
        "the site's pneumonia cases are still called PNEUMONIA at the target sensitivity plus half a standard error "
        "of it (%(margin)s sqrt(t(1 - t)/n) for n local pneumonia cases, at most %(most)s): the margin makes the "
        "target more likely to hold on the next patients, not only on the studies it was fitted on. The "
        "sensitivity, specificity and calibration error it expects are cross-fitted so they are not optimistic: "
        "five times, the map and the threshold are fitted on four fifths of the studies (each class split at "
        "random) and judged on the remaining fifth; the pooled held-out figures are shown with 95 %% Wilson "
        "intervals."
    ) % {"least": site.MIN_PER_CLASS, "margin": _figure(site.MARGIN_SE), "most": _figure(site.MAX_AIM)}


def drift_rules() -> str:
    return gettext(
        "Output drift is judged on at least %(least)s current studies against the reference. The population "
        "stability index (PSI) of the probability histogram (%(bins)s equal bins of 0-1) raises 'watch' at "
        "%(psi_watch)s and 'act' at %(psi_act)s; the Jensen-Shannon distance (base 2) of the same histograms raises "
        "'watch' at %(js_watch)s; a rate (positive calls, rejections) that moved by at least %(rate_watch)s raises "
        "'watch', and by at least %(rate_act)s 'act', when a two-proportion z test gives p < %(alpha)s."
    ) % {
        "least": drift.MIN_CURRENT,
        "bins": drift.BINS,
        "psi_watch": _figure(drift.PSI_WATCH),
        "psi_act": _figure(drift.PSI_ACT),
        "js_watch": _figure(drift.JS_WATCH),
        "rate_watch": _figure(drift.RATE_WATCH, f"{drift.RATE_WATCH:.2f}"),
        "rate_act": _figure(drift.RATE_ACT, f"{drift.RATE_ACT:.2f}"),
        "alpha": _figure(drift.RATE_ALPHA),
    }


def input_rules() -> str:
    return gettext(
        "The share of uploads refused by the gate (not a usable chest radiograph) is held to the reference's with "
        "the rate rule above."
    )


def agreement_rules() -> str:
    return gettext(
        "With at least %(least)s reviewed verification-sample studies in the last %(days)s days: 'act' when the "
        "95 %% upper bound of the weighted sensitivity is below the clinic's target sensitivity, and 'watch' when "
        "reviewers disagree with the model on more than %(share)s of them."
    ) % {
        "least": monitoring.MIN_REVIEWED,
        "days": monitoring.LABEL_DAYS,
        "share": percent(monitoring.DISAGREEMENT_WATCH),
    }


def rules() -> dict[str, str]:
    """Every rule of the site page, by the name the page's context gives it."""
    return {
        "proposal": proposal_rule(),
        "output": drift_rules(),
        "input": input_rules(),
        "agreement": agreement_rules(),
    }
