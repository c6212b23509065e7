"""Mutation testing of the modules that guard a promise (isolation, de-identification, escaping, idempotency, job
claims, PACS sends): mutmut 3 mutates one module at a time ([tool.mutmut] in pyproject.toml names them and the
tests that exercise them), then this prints, per module, how many mutants the tests killed and which survived.

    python -m tools.mutate                          # every module in [tool.mutmut] only_mutate
    python -m tools.mutate diagnosis/selectors.py   # one
    python -m tools.mutate --report                 # the figures of the last runs, running nothing
    python -m tools.mutate --again                  # every mutant again (after the tests changed)
    python -m tools.mutate --survivors              # only the survivors again (after tests were added for them)

`make mutate` runs it. It takes hours on two cores (see the README); each module's mutmut output goes to
mutants/<module>.log, and mutmut's own results stay in mutants/ so a second run tests only what changed.
`mutmut show <name>` prints a surviving mutant's diff.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code), reduced to what the report counts.
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
SURVIVED = {0: "survived", 33: "no tests", 5: "no tests"}


@dataclass(frozen=True)
class Outcome:
    module: str
    statuses: dict[str, str]  # mutant name -> killed, timeout, survived, no tests, not checked, ...

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.statuses.values())

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, status in self.statuses.items() if status in ("survived", "no tests"))

    @property
    def kill_rate(self) -> float | None:
        counts = self.counts
        checked = counts["killed"] + counts["timeout"] + counts["survived"] + counts["no tests"]
        return (counts["killed"] + counts["timeout"]) / checked if checked else None


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def run(path: str, max_children: int, again: bool, survivors: bool = False) -> float:
    """mutmut on one module's mutants (those not tested yet, unless `again`: a run cut short goes on where it
    stopped; with `survivors`, the survivors too); its output appended to mutants/<module>.log. Seconds it took."""
    (ROOT / "mutants").mkdir(exist_ok=True)
    log = ROOT / "mutants" / f"{dotted(path)}.log"
    names = to_test(outcome(path), again=again, survivors=survivors)
    began = time.monotonic()
    if names:
        with log.open("a") as out:
            argv = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
            subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
    return time.monotonic() - began


def to_test(known: Outcome, *, again: bool, survivors: bool) -> list[str]:
    """The mutant names (or pattern) to give mutmut: all of a module never run or run `again`; else those not
    tested yet and, with `survivors`, those that survived (added tests can only kill more: killed stays killed)."""
    if again or not known.statuses:
        return [f"{known.module}.*"]
    retest = {"not checked", *(("survived", "no tests") if survivors else ())}
    return [name for name, status in known.statuses.items() if status in retest]


def outcome(path: str) -> Outcome:
    """The module's mutants and what became of each, from mutmut's record (mutants/<path>.meta)."""
    meta = ROOT / "mutants" / f"{path}.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    statuses = {
        name: KILLED.get(code, SURVIVED.get(code, "not checked" if code is None else f"exit {code}"))
        for name, code in codes.items()
    }
    return Outcome(dotted(path), statuses)


def report(outcomes: list[Outcome], seconds: dict[str, float]) -> None:
    print(f"\n{'module':32} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no test':>7} {'rate':>6}")
    for o in outcomes:
        c, rate = o.counts, o.kill_rate
        took = f"  ({seconds[o.module] / 60:.0f} min)" if o.module in seconds else ""
        shown = f"{100 * rate:5.1f}%" if rate is not None else "    -"
        row = f"{o.module:32} {len(o.statuses):7} {c['killed']:6} {c['timeout']:7} {c['survived']:8}"
        print(f"{row} {c['no tests']:7} {shown}{took}")
    for o in outcomes:
        if o.survivors:
            print(f"\nsurviving in {o.module} (mutmut show <name>):")
            for name in o.survivors:
                print(f"  {name} ({o.statuses[name]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="module files (default: [tool.mutmut] only_mutate)")
    parser.add_argument("--report", action="store_true", help="print the last runs' figures, run nothing")
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--again", action="store_true", help="test every mutant again, not only those untested")
    parser.add_argument("--survivors", action="store_true", help="test the survivors again (and those untested)")
    args = parser.parse_args(argv)
    paths = args.paths or modules()
    seconds: dict[str, float] = {}
    for path in [] if args.report else paths:
        seconds[dotted(path)] = run(path, args.max_children, args.again, args.survivors)
        done = outcome(path)
        print(f"{done.module}: {done.counts['killed'] + done.counts['timeout']} of {len(done.statuses)} killed, "
              f"{seconds[done.module] / 60:.0f} min", flush=True)  # fmt: skip
    report([outcome(p) for p in paths], seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
