"""tools.mutate: which mutants a run gives mutmut, and the kill rate it reports."""

from __future__ import annotations

from tools.mutate import Outcome, to_test

KNOWN = Outcome(
    "diagnosis.access",
    {
        "diagnosis.access.x_a__mutmut_1": "killed",
        "diagnosis.access.x_a__mutmut_2": "survived",
        "diagnosis.access.x_a__mutmut_3": "no tests",
        "diagnosis.access.x_a__mutmut_4": "not checked",
        "diagnosis.access.x_a__mutmut_5": "timeout",
    },
)


def test_a_module_never_run_or_run_again_is_tested_whole() -> None:
    assert to_test(Outcome("diagnosis.access", {}), again=False, survivors=False) == ["diagnosis.access.*"]
    assert to_test(KNOWN, again=True, survivors=False) == ["diagnosis.access.*"]


def test_a_run_goes_on_with_the_mutants_not_tested_yet() -> None:
    assert to_test(KNOWN, again=False, survivors=False) == ["diagnosis.access.x_a__mutmut_4"]


def test_survivors_retests_the_survivors_and_the_untested_never_the_killed() -> None:
    assert sorted(to_test(KNOWN, again=False, survivors=True)) == [
        "diagnosis.access.x_a__mutmut_2",
        "diagnosis.access.x_a__mutmut_3",
        "diagnosis.access.x_a__mutmut_4",
    ]


def test_the_kill_rate_counts_timeouts_as_killed_and_leaves_out_the_untested() -> None:
    assert KNOWN.kill_rate == 2 / 4
    assert KNOWN.survivors == ["diagnosis.access.x_a__mutmut_2", "diagnosis.access.x_a__mutmut_3"]
