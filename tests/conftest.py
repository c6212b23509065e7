from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from tests import images


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Every test writes its files to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }
    yield


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


def upload_file(
    name: str = "chest.png", data: bytes | None = None, content_type: str = "image/png"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, images.png() if data is None else data, content_type=content_type)
