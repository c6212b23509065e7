"""tests/needs.py: a missing need skips with its reason, except where XRAY_REQUIRE_ALL is set (CI): there it
fails, and so does any other skip."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import needs


@pytest.fixture
def ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(needs.SWITCH, "1")


@pytest.fixture
def laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(needs.SWITCH, raising=False)


@pytest.mark.parametrize("value", ["", "0", " 0 "])
def test_the_switch_is_off_unless_set_to_something_else(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(needs.SWITCH, value)
    assert not needs.everything_required()
    monkeypatch.setenv(needs.SWITCH, "1")
    assert needs.everything_required()


@pytest.mark.usefixtures("laptop")
def test_a_missing_need_skips_with_its_reason() -> None:
    needs.need(True, "never said")
    with pytest.raises(pytest.skip.Exception, match=r"^the images are not here$"):
        needs.need(False, "the images are not here")


@pytest.mark.usefixtures("ci")
def test_in_ci_a_missing_need_fails_with_its_reason() -> None:
    needs.need(True, "never said")
    with pytest.raises(pytest.fail.Exception, match=r"the images are not here \(XRAY_REQUIRE_ALL is set"):
        needs.need(False, "the images are not here")


def _skipped(**extra: object) -> SimpleNamespace:
    longrepr = ("tests/x.py", 3, "Skipped: nginx is not installed")
    return SimpleNamespace(skipped=True, outcome="skipped", longrepr=longrepr, **extra)


@pytest.mark.usefixtures("ci")
def test_in_ci_any_skip_is_reported_as_a_failure() -> None:
    report = _skipped()
    needs.fail_the_skip(report)
    assert report.outcome == "failed" and "nginx is not installed" in report.longrepr
    expected = _skipped(wasxfail="a known bug")
    needs.fail_the_skip(expected)
    assert expected.outcome == "skipped"


@pytest.mark.usefixtures("laptop")
def test_elsewhere_a_skip_stays_a_skip() -> None:
    report = _skipped()
    needs.fail_the_skip(report)
    assert report.outcome == "skipped"
