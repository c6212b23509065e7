from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from diagnosis.models import (
    MAX_AGE_YEARS,
    NOTE_MAX_LENGTH,
    PATIENT_REF_MAX_LENGTH,
    Label,
    Projection,
    Role,
    Sex,
    printable,
)
from diagnosis.presenters import decisions
from diagnosis.reviews import Unchecked
from diagnosis.study_details import DETAIL_FIELDS, StudyDetails, details_from

# What the file chooser offers: the types the upload gate takes (diagnosis.validation), DICOM by its extension too,
# since browsers rarely know application/dicom.
ACCEPTED_FILES = "image/jpeg,image/png,.dcm,application/dicom"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Django's documented pattern for several files in one field. An empty file passes here and is refused
    by the upload gate with the others, per file: one bad file never fails the rest of the upload."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPTED_FILES, "multiple": True}))
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        files = data if isinstance(data, list | tuple) else [data]
        return [single(f, initial) for f in files if f] or [single(None, initial)]


class UploadForm(forms.Form):
    images = MultipleFileField(label=_("Chest X-ray images (DICOM, JPEG or PNG)"))
    patient_ref = forms.CharField(
        label=_("Patient reference"),
        max_length=PATIENT_REF_MAX_LENGTH,
        required=False,
        validators=[printable],
        help_text=_("Your clinic's pseudonymous reference, never a name."),
    )
    age_years = forms.IntegerField(label=_("Age (years)"), min_value=0, max_value=MAX_AGE_YEARS, required=False)
    sex = forms.ChoiceField(label=_("Sex"), choices=[("", _("Not given")), *Sex.choices], required=False)
    projection = forms.ChoiceField(
        label=_("Projection"), choices=[("", _("Not given")), *Projection.choices], required=False
    )
    clinical_note = forms.CharField(
        label=_("Clinical note"),
        max_length=NOTE_MAX_LENGTH,
        required=False,
        validators=[printable],
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    reference_label = forms.ChoiceField(
        label=_("Acceptance set: true label"),
        choices=[("", _("None: clinical studies")), *Label.choices],
        required=False,
        help_text=_(
            "Clinic admins only. Every file of this upload is a labelled radiograph for measuring the model at "
            "this site; it stays out of the worklist, history counts and dashboard rates."
        ),
    )

    # Unticked, the details are cleared once an upload is sent: the next file is most often the next patient's.
    keep_details = forms.BooleanField(label=_("Keep these details for the next upload"), required=False)

    def details(self) -> StudyDetails:
        return details_from(self.cleaned_data)

    def next_form(self) -> UploadForm:
        """The form for the next upload: empty, or with this one's details when the user chose to keep them."""
        if not self.cleaned_data.get("keep_details"):
            return UploadForm()
        kept = {name: self.cleaned_data[name] for name in (*DETAIL_FIELDS, "keep_details") if name in self.fields}
        return UploadForm(initial=kept)

    def clean_images(self) -> list[Any]:
        files: list[Any] = self.cleaned_data["images"]
        if len(files) > settings.MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(
                gettext("Upload at most %(count)s files at once (use the API for bulk submission).")
                % {"count": settings.MAX_FILES_PER_UPLOAD}
            )
        return files


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("agree", _("Agree with the model")), ("disagree", _("Disagree with the model"))],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=NOTE_MAX_LENGTH,
        required=False,
        validators=[printable],
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # The reading the page showed, by its time ("none": not reviewed): a colleague's reading saved since is not
    # replaced unseen (reviews.ReviewConflict). Empty or absent: not checked.
    based_on = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, model_label: str | None = None, **kwargs: Any) -> None:
        """With the model's label, each choice names the final label it records ("Disagree → Normal")."""
        super().__init__(*args, **kwargs)
        self.model_label = model_label
        if model_label:
            field = self.fields["decision"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = list(decisions(model_label).items())

    @classmethod
    def revising(cls, review: Any, model_label: str | None) -> ReviewForm:
        """The form for a study: an earlier review's decision and note are filled in, to revise, not retype."""
        initial = {"decision": "agree" if review.agrees else "disagree", "note": review.note} if review else {}
        return cls(initial={**initial, "based_on": seen(review)}, model_label=model_label)

    def clean_based_on(self) -> datetime | Unchecked | None:
        value = self.cleaned_data["based_on"].strip()
        if not value:
            return Unchecked.ANY
        if value == NOT_REVIEWED:
            return None
        try:
            when = parse_datetime(value)
        except ValueError:  # well formed, but no such date (2026-02-30)
            when = None
        if when is None or when.tzinfo is None:  # the page writes an aware time: anything else was not written by it
            raise forms.ValidationError(gettext("This page is out of date: reload it, then save again."))
        return when


NOT_REVIEWED = "none"


def seen(review: Any) -> str:
    """The based_on value for a reading shown on a page."""
    return review.updated.isoformat() if review else NOT_REVIEWED


class InviteForm(forms.Form):
    username = forms.RegexField(
        label=_("Username"),
        regex=r"^[\w.@+-]{1,150}$",
        max_length=150,
        help_text=_("Letters, digits and @.+-_"),
    )
    full_name = forms.CharField(
        label=_("Full name"),
        max_length=150,
        required=False,
        validators=[printable],
        help_text=_("As the trail shows them"),
    )
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", _("Reactivate")), ("0", _("Deactivate"))], coerce=lambda v: v == "1")
