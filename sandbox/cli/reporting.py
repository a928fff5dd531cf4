"""`sandbox report` and `sandbox diff`: a results.json rendered again, or two
of them compared."""

from __future__ import annotations

import argparse
import time

from sandbox import shapes
from sandbox.cli import output
from sandbox.report import diff, document
from sandbox.report.publish import write_report


def cmd_report(args: argparse.Namespace) -> int:
    results = document.load(args.results)
    default = args.results if args.results.is_dir() else args.results.parent
    start = time.monotonic()
    out = write_report(results, args.out or default, args.redact)
    print(f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'} "
          f"({time.monotonic() - start:.2f}s)")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    old, new = document.load(args.old), document.load(args.new)
    changes = diff.diff(old, new)
    if args.json:
        output.print_json(shapes.diff(args.old, args.new, changes, diff.gates(changes)))
    else:
        print(diff.render(changes))
    return 1 if diff.gates(changes) else 0
