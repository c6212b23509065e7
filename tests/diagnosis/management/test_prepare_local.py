"""`manage.py prepare_local`: `make run`'s preparation in one process (the launcher's start runs it; tests/xrayweb/
test_launch*.py start the launcher itself)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from diagnosis import dispatch
from tests import factories


@pytest.mark.parametrize("send_queued", [True, False])
def test_it_collects_the_static_files_makes_the_demo_clinics_and_resends_only_when_asked(
    alice, settings, monkeypatch, tmp_path: Path, django_capture_on_commit_callbacks, send_queued: bool
) -> None:
    settings.STATIC_ROOT = tmp_path / "static"
    queued = factories.study(alice, "queued.png").job.pk
    sent: list[tuple[int, ...]] = []
    monkeypatch.setattr(dispatch, "send", lambda *ids, per_message=1: sent.append(ids))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("prepare_local", "--password=-starts-with-a-dash", *(["--send-queued"] * send_queued), stdout=out)
    assert (tmp_path / "static" / "diagnosis" / "site.js").is_file()
    assert authenticate(username="north-clinician", password="-starts-with-a-dash") is not None
    assert "created north-clinician" in out.getvalue()
    assert sent == ([(queued,)] if send_queued else [])
