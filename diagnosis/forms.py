from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from diagnosis.models import JobStatus, Label


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Django's documented pattern for several files in one field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png", "multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        files = data if isinstance(data, list | tuple) else [data]
        return [single(f, initial) for f in files if f] or [single(None, initial)]


class UploadForm(forms.Form):
    images = MultipleFileField(label="Chest X-ray images (JPEG or PNG)")

    def clean_images(self) -> list[Any]:
        files: list[Any] = self.cleaned_data["images"]
        if len(files) > settings.MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(
                f"Upload at most {settings.MAX_FILES_PER_UPLOAD} files at once (use the API for bulk submission)."
            )
        return files


class HistoryFilterForm(forms.Form):
    label = forms.ChoiceField(choices=[("", "Any label"), *Label.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *JobStatus.choices], required=False)
