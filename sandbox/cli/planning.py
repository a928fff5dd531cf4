"""`sandbox plan` and `sandbox pipeline`: the cells a matrix resolves to,
printed, as JSON, or as the jobs of a CI pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sandbox import matrix, pipeline, plan, pythons, shapes, versions
from sandbox.cli import output


def resolve(path: Path, offline: bool) -> tuple[matrix.Matrix, list[plan.Cell]]:
    mx = matrix.load(path)
    return mx, plan.plan(mx, versions.Catalog(offline=offline), pythons.discover())


def resolved(path: Path, offline: bool, quiet: bool = False) -> tuple[matrix.Matrix, list[plan.Cell]]:
    """The matrix and its cells, printed unless quiet."""
    mx, cells = resolve(path, offline)
    if quiet:
        return mx, cells
    print(f"matrix {path} ({mx.name}): {len(cells)} cells, probes {', '.join(mx.probes)}; formats {', '.join(mx.formats)}")
    for cell in cells:
        if cell.skip:
            print(f"  {cell.id:28} skipped: {cell.skip}")
        else:
            later = "".join(f"; {p} as of {d[:10]}" for p, d in cell.package_dates)
            print(f"  {cell.id:28} {' '.join(cell.requirements)} on {cell.where}, deps as of {(cell.as_of or '?')[:10]}{later}")
    return mx, cells


def cmd_plan(args: argparse.Namespace) -> int:
    mx, cells = resolved(args.matrix, args.offline, quiet=args.json)
    if args.json:
        output.print_json(shapes.plan(mx, cells))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    mx, cells = resolved(args.matrix, args.offline, quiet=True)
    planned = shapes.plan(mx, cells)
    installable = pythons.uv_downloads()
    if args.gitlab:
        output.print_json(pipeline.gitlab(planned, installable, args.propose, args.docker_service))
    else:
        print(json.dumps(pipeline.github(planned, installable), separators=(",", ":")))
    return 0
