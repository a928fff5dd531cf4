"""Put the output of a real run of the default matrix into the README's sample.

    sandbox run matrix.toml | tee run.txt        # piped: the plain output
    python scripts/readme_sample.py run.txt

Keeps the plan, the first two cells' provision and export lines, every load
line, the final table and the closing summary ("..." marks what it leaves out);
tests/test_readme.py then checks every line against reports/default/results.json,
so publish that run's report too."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- sample: sandbox run matrix.toml"


def sample(lines: list[str]) -> list[str]:
    cells = next(i for i, l in enumerate(lines) if i and not l.startswith("  "))
    plan = lines[:cells]  # the header, then one line per cell
    phases = [l for l in lines if l.startswith("[")]
    first = phases[:4]
    loads = [l for l in phases if l.split()[3] == "load"]
    rest = lines[lines.index(next(l for l in lines if l.startswith("cell ") and "status" in l)):]
    return plan + first + ["..."] + [l for l in loads if l not in first] + rest


def main(run_output: Path) -> None:
    lines = [l.rstrip() for l in run_output.read_text().splitlines() if not l.startswith("rc=")]
    readme = ROOT / "README.md"
    text = readme.read_text()
    start = text.index("```\n", text.index(MARKER)) + 4
    end = text.index("\n```", start)
    readme.write_text(text[:start] + "\n".join(sample(lines)) + text[end:])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
