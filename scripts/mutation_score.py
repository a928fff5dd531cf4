"""The score of the last `mutmut run` (its mutants/**/*.meta files): per
module killed / total and the survivors' names; `--survivors` lists them.
Usage: python scripts/mutation_score.py [--survivors] [--json FILE]"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

MUTANTS = Path("mutants")
# mutmut's exit codes of a mutant's test run (mutmut/stats.py): the tests failed (1; 3 is
# pytest's internal error), they passed (0), no test covers it (33, 5), or they ran out of time
KILLED, SURVIVED, NO_TESTS, TIMEOUT = {1, 3}, {0}, {5, 33}, {24, -24, 36, 152, 255}


def outcome(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    for name, codes in (("killed", KILLED), ("survived", SURVIVED), ("no tests", NO_TESTS), ("timeout", TIMEOUT)):
        if exit_code in codes:
            return name
    return "suspicious"


def scores(root: Path) -> dict[str, dict[str, list[str]]]:
    """module path -> outcome -> mutant names."""
    found: dict[str, dict[str, list[str]]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        by = found.setdefault(module, {})
        for name, code in sorted(codes.items()):
            by.setdefault(outcome(code), []).append(name)
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    parser.add_argument("--json", type=Path, help="also write the counts per module as JSON here")
    args = parser.parse_args(argv)
    found = scores(MUTANTS)
    if not found:
        print("no mutation results under mutants/: run `mutmut run` (nox -s mutants) first", file=sys.stderr)
        return 2
    total: Counter[str] = Counter()
    print(f"{'module':32} {'killed':>7} {'total':>6} {'score':>6} {'survived':>9} {'no tests':>9} {'timeout':>8}")
    for module, by in found.items():
        counts = Counter({k: len(v) for k, v in by.items()})
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    if args.survivors:
        for by in found.values():
            for name in by.get("survived", []):
                print(f"survived: {name}")
    if args.json:
        args.json.write_text(json.dumps({m: {k: len(v) for k, v in by.items()} for m, by in found.items()}, indent=1))
    return 0


def _row(module: str, counts: Counter[str]) -> str:
    n = sum(counts.values())
    killed = counts["killed"] + counts["timeout"]
    score = f"{100 * killed / n:.0f}%" if n else "-"
    return (f"{module:32} {killed:>7} {n:>6} {score:>6} {counts['survived']:>9} {counts['no tests']:>9} "
            f"{counts['timeout']:>8}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
