"""The command line's grammar: every verb, its arguments and their help, and
the function (in the verb modules beside this one) that carries it out."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from sandbox import __version__, pipeline, registries, runner, runtimes
from sandbox.check import limits
from sandbox.cli import checking, environments, planning, reporting, reproducing, running, sharding
from sandbox.cli.argparsing import Parser

Verb = Callable[[str, str], argparse.ArgumentParser]  # name, help -> the verb's parser

EXIT_CODES = """exit codes:
  0    ok (findings such as failing loads are results, not errors)
  1    a cell errored, nothing at all was measured, or `diff`/`check` found something that fails
  2    usage or configuration error (a bad matrix, spec, path or option)
  3    a command sandbox ran failed (its log is named)
  4    a bug in sandbox itself (please report it, with --debug): also `run`/`export`/`load`/`merge`
       when an export or load failed in sandbox's own code (a harness error, listed in the summary), or a finding its witness did not reproduce
  74   the results store cannot be written (what was stored is kept)
  75   busy: another run of this matrix holds its lock (with --no-wait)
  130  interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM"""


EXAMPLES = {
    "run": "sandbox run matrix.toml -j 4\n  sandbox run matrix.toml -q     # only the summary and the report paths",
    "plan": "sandbox plan matrix.toml --json | jq -r '.cells[].id'",
    "export": "sandbox export matrix.toml --cell tf2.18.1-py3.11-cpu --out bundles/export-tf2.18.1",
    "load": "sandbox load matrix.toml --cell tf1.15.5-py3.7-cpu --bundles bundles/export-* --out bundles/load-tf1.15.5",
    "merge": "sandbox merge bundles/* --reports reports",
    "report": "sandbox report reports/default/results.json",
    "check": "sandbox check model.pb --against tf==1.13,tf==1.15\n  sandbox check saved_model/ --against all --json\n"
             "  sandbox check model.keras --against keras==3.11\n"
             "  sandbox check model.tflite --against ai-edge-litert==1.2,tflite-runtime==2.14",
    "registries": "sandbox registries --build 2.16 2.17",
    "repro": "sandbox repro examples/repro/matmul_frozen_graph.toml -j 2 --json",
    "bisect": "sandbox bisect examples/repro/matmul_frozen_graph.toml",
    "shell": "sandbox shell tf2.15.1-py3.11-cpu",
    "diff": "sandbox diff old/results.json reports/default --json",
    "witness": "sandbox witness reports/tf-map\n  sandbox witness merged/tf-map --matrix matrices/tf-map.toml --bundles bundles/export-*",
    "pythons": "sandbox pythons --json\n  sandbox pythons --install 3.12",
    "pipeline": "sandbox pipeline matrices/tf-map.toml --gitlab > shards.yml",
}


def jobs(text: str) -> int:
    """-j: a whole number of cells at once, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def mebibytes(text: str) -> float:
    """--max-model-size: a size in MiB, more than 0 (0 used to switch the limit off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of MiB") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a size in MiB above 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sandbox", description="Map TensorFlow's cross-version model compatibility.",
        epilog=f"example:\n  sandbox run matrix.toml\n\n{EXIT_CODES}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sandbox {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    for add in VERBS:
        add(verb)
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


MATRIX_HELP = "the matrix file (default: matrix.toml)"


def _run(verb: Verb) -> None:
    run = verb("run", "run a matrix and write its report")
    run.add_argument("matrix", nargs="?", default="matrix.toml", type=Path, help=MATRIX_HELP)
    _jobs(run)
    _work_dir(run)
    _reports(run)
    run.add_argument("--fresh", action="store_true",
                     help="measure everything again, ignoring the results store (it is updated)")
    _offline(run)
    out = run.add_mutually_exclusive_group()
    out.add_argument("-v", "--verbose", action="store_true",
                     help="print every export and load as it finishes, and every failing pair")
    out.add_argument("-q", "--quiet", action="store_true", help="print only the closing summary and the report paths")
    run.add_argument("--no-wait", action="store_true",
                     help="fail (exit 75) instead of waiting when another run of this matrix is running")
    run.add_argument("--no-witness", dest="witness", action="store_false",
                     help="do not re-run each finding with its standalone witness script at the end")
    run.set_defaults(func=running.cmd_run)
    _redact(run)


def _plan(verb: Verb) -> None:
    show = verb("plan", "print the cells a matrix resolves to, then stop")
    show.add_argument("matrix", nargs="?", default="matrix.toml", type=Path, help=MATRIX_HELP)
    _offline(show)
    show.add_argument("--json", action="store_true",
                      help="print the plan as JSON (for a CI matrix; shape: $defs/plan of sandbox/report/cli.schema.json)")
    show.set_defaults(func=planning.cmd_plan)


def _shards(verb: Verb) -> None:
    _shard_parser(verb, "export", "shard: one cell's exports as a bundle (one CI job per cell)", sharding.cmd_export)
    ld = _shard_parser(verb, "load", "shard: one consumer cell's loads of every export bundle", sharding.cmd_load)
    ld.add_argument("--bundles", required=True, nargs="+", type=Path, help="export bundle folders (every cell's)")


def _merge(verb: Verb) -> None:
    mg = verb("merge", "shard: the report of a run from its export and load bundles")
    mg.add_argument("bundles", nargs="+", type=Path, help="every export and load bundle folder of the run")
    mg.add_argument("--allow-incomplete", action="store_true",
                    help="publish a run that lacks bundles or loads, each cell concerned marked error (exit 1)")
    _reports(mg)
    mg.set_defaults(func=sharding.cmd_merge)
    _redact(mg)


def _witness(verb: Verb) -> None:
    wit = verb("witness", "re-run each finding of a report with its standalone witness script, in the consumer's "
                          "environment, and add the outcomes to the report (only the witnesses the store lacks run)")
    wit.add_argument("report", type=Path, help="a report folder (or its results.json)")
    wit.add_argument("--matrix", type=Path, help="the matrix the report was run from (default: the bundles', "
                                                 "else the one results.json names)")
    wit.add_argument("--bundles", nargs="+", type=Path, default=[], metavar="BUNDLE",
                     help="export bundles of a sharded run: their artifacts are what the witnesses load")
    _jobs(wit)
    _work_dir(wit)
    _offline(wit)
    wit.add_argument("--fresh", action="store_true", help="run every witness again, ignoring the results store")
    wit.set_defaults(func=running.cmd_witness)
    _redact(wit)


def _report(verb: Verb) -> None:
    rep = verb("report", "re-render a report (index.md, index.html, junit.xml) from a results.json")
    rep.add_argument("results", type=Path, help="a results.json or a report folder")
    rep.add_argument("--out", type=Path, help="folder (default: beside results.json)")
    rep.set_defaults(func=reporting.cmd_report)
    _redact(rep)


def _check(verb: Verb) -> None:
    chk = verb("check", "will a model load in other TF versions? (static, no environment; exit 1: it will fail somewhere)")
    chk.add_argument("model", type=Path, help="a SavedModel folder, a frozen GraphDef .pb, a .h5 / .keras or a .tflite file")
    chk.add_argument("--against", required=True, metavar="TARGETS",
                     help="tf==X[,tf==Y...], keras==X (.keras/.h5), ai-edge-litert==X or tflite-runtime==X (.tflite), "
                          "or 'all' (every stored registry that applies)")
    chk.add_argument("--max-model-size", type=mebibytes, default=limits.DEFAULT_MAX_BYTES / (1 << 20), metavar="MIB",
                     help="refuse larger model files, of every format (default: %(default).0f MiB)")
    chk.add_argument("--json", action="store_true", help="print the verdicts as JSON ($defs/check of cli.schema.json)")
    chk.set_defaults(func=checking.cmd_check)


def _registries(verb: Verb) -> None:
    regs = verb("registries", "list the stored op registries, or --build more")
    regs.add_argument("--build", nargs="+", metavar="VERSION",
                      help="provision these releases (2.16, or keras==3.5, ai-edge-litert==1.2, tflite-runtime==2.14) "
                           "and store their registries")
    regs.add_argument("--keras-backend", default=registries.REGISTRY_KERAS_BACKEND, choices=sorted(runtimes.BACKENDS),
                      help="the backend Keras registries are measured on (default: %(default)s)")
    regs.set_defaults(func=checking.cmd_registries)


def _repro(verb: Verb) -> None:
    rp = verb("repro", "load a user's model (or run their script) across TF versions")
    rp.add_argument("spec", type=Path, help="the repro spec (a TOML file: producer, consumers, expected error)")
    _jobs(rp)
    _work_dir(rp)
    _reports(rp)
    rp.add_argument("--json", action="store_true",
                    help="print the outcome per consumer and loader as JSON ($defs/repro of cli.schema.json)")
    rp.set_defaults(func=reproducing.cmd_repro)
    _redact(rp)


def _bisect(verb: Verb) -> None:
    bs = verb("bisect", "first TF release where a repro's outcome changes")
    bs.add_argument("spec", type=Path, help="the repro spec (its consumers' versions are bisected)")
    _work_dir(bs)
    bs.set_defaults(func=reproducing.cmd_bisect)


def _shell(verb: Verb) -> None:
    sh = verb("shell", "a shell inside a cell's environment")
    sh.add_argument("cell", help="a cell id as `sandbox plan` prints it, such as tf2.15.1-py3.11-cpu")
    sh.add_argument("--matrix", type=Path, default=Path("matrix.toml"), metavar="FILE",
                    help="find the cell in this matrix when it has it (default: matrix.toml)")
    _work_dir(sh)
    _offline(sh)
    sh.set_defaults(func=environments.cmd_shell)


def _diff(verb: Verb) -> None:
    dif = verb("diff", "what changed between two runs; exit 1 when something newly fails")
    dif.add_argument("old", type=Path, help="a results.json or a report folder")
    dif.add_argument("new", type=Path, help="a results.json or a report folder")
    dif.add_argument("--json", action="store_true", help="print the changes as JSON ($defs/diff of cli.schema.json)")
    dif.set_defaults(func=reporting.cmd_diff)


def _pythons(verb: Verb) -> None:
    py = verb("pythons", "list the Python interpreters found")
    py.add_argument("--json", action="store_true", help="print them as JSON ($defs/pythons of cli.schema.json)")
    py.add_argument("--install", metavar="MINOR", help="make this Python available (found, or installed with uv); "
                    "where uv has none, say so and exit 0: cells on it run in their matrix's python_image")
    py.set_defaults(func=environments.cmd_pythons)


def _pipeline(verb: Verb) -> None:
    pl = verb("pipeline", "a CI pipeline for a matrix's shards (an export and a load job per cell, then merge)")
    pl.add_argument("matrix", type=Path, help="the matrix file")
    which = pl.add_mutually_exclusive_group(required=True)
    which.add_argument("--gitlab", action="store_true", help="the child pipeline .gitlab-ci.yml triggers (JSON, which is YAML)")
    which.add_argument("--github", action="store_true", help="the job matrix of .github/workflows/matrix.yml (one line of JSON)")
    pl.add_argument("--propose", action="store_true",
                    help="with --gitlab: a last job proposes a changed report as a merge request (ci/propose.sh)")
    pl.add_argument("--docker-service", default=pipeline.DOCKER_SERVICE, metavar="IMAGE",
                    help="with --gitlab: the service that gives jobs of cells in images a Docker Engine "
                         "(default: %(default)s; '' on shell runners that have an engine of their own)")
    _offline(pl)
    pl.set_defaults(func=planning.cmd_pipeline)


# the verbs in the order `sandbox --help` lists them
VERBS = (_run, _plan, _shards, _merge, _witness, _report, _check, _registries, _repro, _bisect, _shell, _diff,
         _pythons, _pipeline)


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=jobs, default=runner.default_jobs(), metavar="N",
                   help="agents at once (exports and loads), at least 1 (default: the cores this process may use, "
                        f"fewer where memory is short: {runner.AGENT_MEMORY >> 30} GiB each; here %(default)s)")


def _work_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-dir", type=Path, default=Path("runs"), metavar="DIR",
                   help="where runs keep scratch files and logs (default: runs)")


def _reports(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="where reports are written, one folder per matrix or spec name (default: reports)")


def _offline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true",
                   help="use the cached release catalog only (no request to PyPI)")


def _redact(p: argparse.ArgumentParser) -> None:
    """The verbs that write a report."""
    p.add_argument("--no-redact", dest="redact", action="store_false",
                   help="keep host names and local paths in the report (redacted by default)")


def _shard_parser(verb: Verb, name: str, text: str,
                  func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The options `sandbox export` and `sandbox load` share."""
    parser = verb(name, text)
    parser.add_argument("matrix", type=Path, help="the matrix file")
    parser.add_argument("--cell", required=True, help="a cell id from `sandbox plan --json`")
    parser.add_argument("--out", required=True, type=Path, help="the bundle folder to write")
    _work_dir(parser)
    _offline(parser)
    parser.add_argument("--fresh", action="store_true", help="measure again what the results store has")
    parser.add_argument("--prune-store", action="store_true",
                        help="then remove from the results store every record this job did not use (a CI job's "
                             "own store, cached between runs; never the store other runs share)")
    parser.set_defaults(func=func)
    return parser
