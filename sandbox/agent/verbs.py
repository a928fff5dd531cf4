"""The agent's verbs (export, load, registry) and its command line.

Outcomes of items (exported / not-applicable / error, ok / outputs-differ /
load-error / run-error, and harness-error for either when our own code raised:
see blame.py) are records, never exit codes: a verb that completed exits 0.
Bad arguments exit 2 with one line; an agent bug outside an item raises.

A cell may hold no TensorFlow (Keras on JAX, LiteRT, tflite-runtime): each
verb imports the modules it needs when it runs, and they import TF only
where an item needs it (what needs it where there is none is not applicable).
"""
import argparse
import os
import platform
import posixpath
import shutil
import sys
import time
import traceback
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

import blame
import cellinfo
import catalog
import jsonl
import probes
import tfcompat
import texts
import watchdog
import zoo  # noqa: F401  (registers the built-in probes)

NO_TF = "no TensorFlow in this cell"

MANIFEST = "manifest.jsonl"
ERROR_CHARS = 4000  # of an error's text, and of a traceback: head and tail kept, the cut marked
HARNESS_ERROR = "harness-error"


class UsageError(Exception):
    """Bad arguments or inputs: reported as one line, exit code 2."""


def note(message: str) -> None:
    sys.stderr.write("agent: %s\n" % message)
    sys.stderr.flush()


def _error_text(e: BaseException) -> str:
    return texts.shorten(str(e), ERROR_CHARS)


def _traceback(e: BaseException) -> str:
    """The exception's traceback (where in TF it was raised, and what caused it), for triage."""
    lines = traceback.format_exception(type(e), e, e.__traceback__)
    return texts.shorten("".join(lines), ERROR_CHARS)


def _failure(e: BaseException, status: str) -> Dict[str, Any]:
    """The fields of a failed item: `status` when the library raised `e`,
    harness-error when our own code did (blame.py)."""
    found = dict(blame.describe(e), error_type=type(e).__name__, error=_error_text(e), traceback=_traceback(e))
    found["status"] = HARNESS_ERROR if blame.is_harness(e) else status
    return found


def _open_log(path: str, resume: bool) -> List[Dict[str, Any]]:
    """Records already in `path` (with --resume); refuse to mix runs otherwise."""
    if resume:
        return jsonl.read(path)
    if os.path.exists(path):
        raise UsageError("%s already exists; pass --resume to continue it" % path)
    return []


# ---------------------------------------------------------------- export

def _save_npz(path: str, name: str, array: np.ndarray) -> None:
    """path (.npz) holding one array under `name`, written atomically."""
    tmp = path[:-len(".npz")] + ".tmp.npz"
    arrays: Dict[str, Any] = {name: array}
    np.savez(tmp, **arrays)
    os.rename(tmp, path)


class ProbeRun(object):
    """One probe's preparation (training + reference data), done once, lazily."""

    def __init__(self, out: str, probe: probes.Probe) -> None:
        self.out = out
        self.probe = probe
        self.prepared: Optional[probes.Prepared] = None
        self.error: Optional[BaseException] = None

    def get(self) -> probes.Prepared:
        if self.prepared is None and self.error is None:
            try:
                self.prepared = self._prepare()
            except Exception as e:
                traceback.print_exc()
                self.error = e
        if self.prepared is None:
            raise self.error or RuntimeError("probe preparation failed")
        return self.prepared

    def _prepare(self) -> probes.Prepared:
        prep = probes.prepare(self.probe)
        directory = os.path.join(self.out, self.probe.name)
        if not os.path.isdir(directory):
            os.makedirs(directory)
        _save_npz(os.path.join(directory, "inputs.npz"), "x", prep.x)
        if prep.y is not None:  # None without TF: each Keras format writes its own
            _save_npz(os.path.join(directory, "outputs.npz"), "y", prep.y)
        return prep


def _blank_artifact(probe: str, fmt: str, device: Optional[str] = None) -> Dict[str, Any]:
    return {"kind": "artifact", "probe": probe, "format": fmt, "device": device, "status": "error", "path": None,
            "reason": None, "error_type": None, "traceback": None, "ops": [], "op_attrs": {},
            "signature": None, "inputs": None, "outputs": None, "trained": None, "default_attrs": {},
            "lazy_ops": [], "lazy_attrs": {}, "tflite_ops": None, "writer": None, "raised_in": None,
            "raised_by": None}


def _artifact(run: ProbeRun, fmt: str) -> Dict[str, Any]:
    """Export one format of a probe and describe the result (never raises)."""
    import exporters
    import graphinfo
    import loaders  # an exporter may run the cell's own loader (its failures are loaders.Stage)
    name = run.probe.name
    record = _blank_artifact(name, fmt, getattr(run.probe, "device", None))  # duck-typed probes may lack it
    target = os.path.join(run.out, name, fmt)
    try:
        prep = run.get()
        record.update(inputs=name + "/inputs.npz", trained=prep.state,
                      outputs=name + "/outputs.npz" if prep.y is not None else None)
        if os.path.exists(target):
            shutil.rmtree(target)  # a partial write from a crashed run
        done = exporters.FORMATS[fmt](prep, target)
        path = posixpath.normpath(posixpath.join(name, fmt, done.path))
        if done.outputs is not None:  # this format computes its own reference (a Keras model)
            _save_npz(os.path.join(run.out, name, fmt + ".outputs.npz"), "y", done.outputs)
            record["outputs"] = "%s/%s.outputs.npz" % (name, fmt)
        info = graphinfo.describe(os.path.join(run.out, path), fmt)
        record.update(status="exported", path=path, ops=info["ops"], op_attrs=info["op_attrs"],
                      default_attrs=info["default_attrs"], lazy_ops=info["lazy_ops"],
                      lazy_attrs=info["lazy_attrs"], tflite_ops=info.get("tflite_ops"),
                      signature=info["signature"] or done.signature, writer=done.writer)
    except exporters.NotApplicable as e:
        record.update(status="not-applicable", reason=str(e))
    except Exception as e:
        traceback.print_exc()
        cause = e.cause if isinstance(e, loaders.Stage) else e  # the exporter ran the cell's own loader
        failed = _failure(cause, "error")
        failed["reason"] = failed.pop("error")  # an artifact's error text is its reason
        record.update(failed)
    return record


def export(out: str, probe_names: List[str], formats: List[str], resume: bool,
           only: Optional[List[Tuple[str, str]]] = None) -> None:
    """Every probe x format (or only the `only` pairs among them)."""
    manifest = os.path.join(out, MANIFEST)
    previous = _open_log(manifest, resume)
    done = set((r.get("probe"), r.get("format")) for r in previous if r.get("kind") == "artifact")
    with jsonl.Writer(manifest) as writer:
        if not any(r.get("kind") == "cell" for r in previous):
            writer.write(cellinfo.describe())
        for name in probe_names:
            run = ProbeRun(out, probes.PROBES[name])
            for fmt in formats:
                if (name, fmt) in done or (only is not None and (name, fmt) not in only):
                    continue
                writer.write({"kind": "start", "probe": name, "format": fmt})
                watchdog.begin("export %s/%s" % (name, fmt))
                started = time.time()
                record = _artifact(run, fmt)
                record["seconds"] = round(time.time() - started, 3)
                watchdog.end(lambda: writer.write(record))
                note("export %s/%s: %s (%.1fs)" % (name, fmt, record["status"], record["seconds"]))


# ---------------------------------------------------------------- load

def _exported(directory: str) -> List[Dict[str, Any]]:
    """The producer's exported artifacts (the last record wins per probe/format)."""
    latest: Dict[Tuple[Any, Any], Dict[str, Any]] = {}
    for record in jsonl.read(os.path.join(directory, MANIFEST)):
        if record.get("kind") == "artifact":
            latest[(record.get("probe"), record.get("format"))] = record
    return [r for r in latest.values() if r.get("status") == "exported"]


def _load_one(directory: str, artifact: Dict[str, Any], loader: str,
              atol: float, rtol: float) -> Dict[str, Any]:
    import loaders
    result: Dict[str, Any] = {"status": "load-error", "error_type": None, "error": None,
                              "max_abs_err": None, "max_rel_err": None, "reason": None,
                              "traceback": None, "raised_in": None, "raised_by": None}
    try:
        path = os.path.join(directory, artifact["path"])
        if artifact.get("inputs") is None:  # a user's model: loading it is the test
            loaders.get(loader)(path, None, artifact)
            result.update(status="ok", reason="loaded; no reference inputs to run it on")
            return result
        x = np.load(os.path.join(directory, artifact["inputs"]))["x"]
        reference = np.load(os.path.join(directory, artifact["outputs"]))["y"]
        y = loaders.get(loader)(path, x, artifact)
        result.update(loaders.compare(y, reference, atol, rtol))
    except (loaders.NotApplicable, tfcompat.NoTensorFlow) as e:
        result.update(status="not-applicable", reason=str(e))
    except loaders.Stage as e:
        result.update(_failure(e.cause, e.phase + "-error"))
    except Exception as e:
        traceback.print_exc()
        result.update(_failure(e, "load-error"), reason="failed outside the loader's load/run phases")
    return result


LOAD_KEYS = ("producer", "probe", "format", "loader")


def _load_items(producer: str, directory: str) -> Iterator[Dict[str, Any]]:
    """Every exported artifact of a producer x every loader of its format."""
    for artifact in sorted(_exported(directory), key=lambda r: (r["probe"], r["format"])):
        # a reporter's model names the loaders that apply to it (sandbox/repro.py)
        for loader in artifact.get("loaders") or catalog.loaders_for(artifact["format"]):
            yield {"producer": producer, "dir": directory, "probe": artifact["probe"],
                   "format": artifact["format"], "loader": loader}


def _listed_items(path: str) -> List[Dict[str, Any]]:
    """The items the host asked for (JSON lines: producer, dir, probe, format, loader)."""
    items = jsonl.read(path)
    for item in items:
        missing = [k for k in LOAD_KEYS + ("dir",) if not isinstance(item.get(k), str)]
        if missing:
            raise UsageError("%s: an item lacks %s" % (path, ", ".join(missing)))
    return items


class Artifacts(object):
    """Exported artifacts by (directory, probe, format), each manifest read once."""

    def __init__(self) -> None:
        self._by_dir = {}  # type: Dict[str, Dict[Tuple[Any, Any], Dict[str, Any]]]

    def get(self, directory: str, probe: str, fmt: str) -> Optional[Dict[str, Any]]:
        if directory not in self._by_dir:
            self._by_dir[directory] = dict(((r["probe"], r["format"]), r) for r in _exported(directory))
        return self._by_dir[directory].get((probe, fmt))


Tolerances = Dict[str, Tuple[float, float]]


def load(items: List[Dict[str, Any]], out: str, resume: bool, tolerances: Tolerances,
         default: Tuple[float, float]) -> None:
    done = set(tuple(r.get(k) for k in LOAD_KEYS)
               for r in _open_log(out, resume) if r.get("kind") == "load")
    artifacts = Artifacts()
    with jsonl.Writer(out) as writer:
        for entry in items:
            item = dict((k, entry[k]) for k in LOAD_KEYS)
            if tuple(item[k] for k in LOAD_KEYS) in done:
                continue
            directory = entry["dir"]
            artifact = artifacts.get(directory, item["probe"], item["format"])
            if artifact is None:  # the host named an artifact that is not there: a bug of ours
                writer.write(dict(item, kind="load", status=HARNESS_ERROR, error_type="LookupError",
                                  error="no exported %s/%s in %s" % (item["probe"], item["format"], directory),
                                  raised_in="agent/verbs.py in load", raised_by=None))
                continue
            writer.write(dict(item, kind="start"))
            watchdog.begin("load " + "/".join(item[k] for k in LOAD_KEYS))
            started = time.time()
            atol, rtol = tolerances.get(item["probe"], default)
            record = dict(item, kind="load", atol=atol, rtol=rtol)
            record.update(_load_one(directory, artifact, item["loader"], atol, rtol))
            record["seconds"] = round(time.time() - started, 3)
            watchdog.end(lambda: writer.write(record))
            note("load %s: %s" % ("/".join(item[k] for k in LOAD_KEYS), record["status"]))


# ---------------------------------------------------------------- registry

def _interpreters() -> Dict[str, Dict[str, Any]]:
    """Per TFLite interpreter this cell has (by loader name): the highest
    version of each builtin op it resolves ("ops"; None where construction
    does not tell) and whether it runs select TF ops ("flex")."""
    import loaders
    import tfliteinfo
    found = loaders.interpreters()
    if "tflite_interpreter" not in found and tfcompat.available():  # TF 1.x before tf.lite
        old = tfcompat.lookup(tfcompat.tf(), "contrib.lite.Interpreter")
        if old is not None:
            found["tflite_interpreter"] = old
    return dict((name, {"ops": tfliteinfo.runtime_versions(cls), "flex": tfliteinfo.runs_flex(cls)})
                for name, cls in found.items())


def _ops() -> Tuple[str, bool, List[Any]]:
    if not tfcompat.available():
        return NO_TF, True, []
    import opregistry
    return opregistry.registered_ops()


def registry(out: str) -> None:
    source, complete, op_defs = _ops()
    import kerasapi
    interpreters = _interpreters()
    first = next(iter(interpreters.values()), {})
    jsonl.write_json(out, {
        "tflite_ops": first.get("ops"),  # the cell's own interpreter (TF's, else the one it has)
        "interpreters": interpreters,
        "keras": kerasapi.describe_native(),
        "tensorflow": tfcompat.tf().__version__ if tfcompat.available() else None,
        "python": platform.python_version(),
        "source": source,
        "complete": complete,
        "ops": dict((op.name, {"attrs": sorted(a.name for a in op.attr)}) for op in op_defs),
        "cell": cellinfo.describe(),  # what this cell is, for cells that export nothing
    })
    note("registry: %d ops from %s; TFLite interpreters: %s" % (len(op_defs), source, ", ".join(interpreters) or "none"))


# ---------------------------------------------------------------- command line

def _names(value: str, known: List[str], what: str) -> List[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError("unknown %s %s; known: %s" % (what, ",".join(unknown) or "(none given)",
                                                        ",".join(known)))
    return names


def _producer(value: str) -> Tuple[str, str]:
    name, sep, directory = value.partition("=")
    if not sep or not name or not directory:
        raise UsageError("--producer wants NAME=DIR, got %r" % value)
    return name, directory


def _pairs(value: Optional[str]) -> Optional[List[Tuple[str, str]]]:
    if value is None:
        return None
    pairs = []
    for part in value.split(","):
        probe, sep, fmt = part.strip().partition("/")
        if not sep or not probe or not fmt:
            raise UsageError("--only wants PROBE/FORMAT,..., got %r" % value)
        pairs.append((probe, fmt))
    return pairs


def _tolerance(value: str) -> Tuple[str, Tuple[float, float]]:
    name, sep, rest = value.partition("=")
    parts = rest.split(",")
    try:
        if not sep or not name or len(parts) != 2:
            raise ValueError(value)
        return name, (float(parts[0]), float(parts[1]))
    except ValueError:
        raise UsageError("--tolerance wants PROBE=ATOL,RTOL, got %r" % value)


ITEM_TIMEOUT_HELP = ("exit %d (nothing written for the item) when one item runs longer; 0: no limit"
                     % watchdog.ITEM_TIMEOUT_EXIT)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="agent", description="sandbox in-cell agent")
    verbs = top.add_subparsers(dest="verb")
    verbs.required = True
    ex = verbs.add_parser("export", help="build probes and save them in every format")
    ex.add_argument("--out", required=True)
    ex.add_argument("--probes", default=",".join(probes.PROBES))
    ex.add_argument("--formats", default=None, help="default: every format")
    ex.add_argument("--resume", action="store_true")
    ex.add_argument("--item-timeout", type=float, default=0, metavar="SECONDS", help=ITEM_TIMEOUT_HELP)
    ex.add_argument("--only", metavar="PROBE/FORMAT,...",
                    help="export only these probe/format pairs (the host's store has the rest)")
    ex.add_argument("--probe-module", action="append", default=[], metavar="PATH",
                    help="a Python file defining PROBES (user probes)")
    ld = verbs.add_parser("load", help="load every producer's artifacts and compare outputs")
    ld.add_argument("--producer", action="append", default=[], metavar="NAME=DIR",
                    help="load every artifact of this producer with every loader of its format")
    ld.add_argument("--items", metavar="FILE",
                    help="load only these items (JSON lines: producer, dir, probe, format, loader)")
    ld.add_argument("--out", required=True)
    ld.add_argument("--resume", action="store_true")
    ld.add_argument("--item-timeout", type=float, default=0, metavar="SECONDS", help=ITEM_TIMEOUT_HELP)
    ld.add_argument("--atol", type=float, default=1e-4)
    ld.add_argument("--rtol", type=float, default=1e-3)
    ld.add_argument("--tolerance", action="append", default=[], metavar="PROBE=ATOL,RTOL")
    ld.add_argument("--keras-unsafe", action="store_true",
                    help="let Keras run code stored in models (Lambda layers); default: safe mode where Keras has it")
    ld.add_argument("--probe-module", action="append", default=[], metavar="PATH")
    rg = verbs.add_parser("registry", help="dump this TF's registered ops and their attrs")
    rg.add_argument("--out", required=True)
    return top


def _probe_modules(paths: List[str]) -> None:
    for path in paths:
        blame.add_harness_file(path)  # a probe's own code failing is not the library's doing
        try:
            note("probe module %s: %s" % (path, ", ".join(probes.load_module(path))))
        except Exception as e:
            raise UsageError("cannot load probe module %s: %s: %s" % (path, type(e).__name__, e))


def run(args: argparse.Namespace) -> None:
    _probe_modules(getattr(args, "probe_module", []))
    if args.verb == "export":
        import exporters
        formats = list(exporters.FORMATS)
        export(args.out, _names(args.probes, list(probes.PROBES), "probe"),
               _names(args.formats or ",".join(formats), formats, "format"), args.resume, _pairs(args.only))
    elif args.verb == "load":
        import loaders
        tolerances = dict(_tolerance(t) for t in args.tolerance)
        loaders.KERAS_SAFE_MODE[0] = not args.keras_unsafe
        items = [i for p in args.producer for i in _load_items(*_producer(p))]
        if args.items:
            items += _listed_items(args.items)
        if not items and not args.producer:
            raise UsageError("load needs --producer NAME=DIR or --items FILE")
        load(items, args.out, args.resume, tolerances, (args.atol, args.rtol))
    else:
        registry(args.out)


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    watchdog.start(getattr(args, "item_timeout", None))
    started = time.time()
    try:
        run(args)
    except UsageError as e:
        note("error: %s" % e)
        return 2
    note("%s done in %.1fs" % (args.verb, time.time() - started))
    return 0
