"""Peak memory and wall time of `sandbox check` on crafted frozen GraphDefs,
for this tree and for a baseline revision, in the same invocation.

    python benchmarks/bench_check.py [--baseline REV] [--sizes 20 100]

Each size (MB) gets a GraphDef of many small nodes, each setting a few attrs
to values no other node uses (the shape that made the old reader keep ~90x
the file in memory), written directly in protobuf wire format; the shape
`keras-bomb` is a .keras zip whose config.json is that many MB uncompressed
(a few hundred KB compressed: the zip bomb of issue 17). Each
`sandbox check FILE --against tf==2.15` runs in its own process; its peak RSS
comes from wait4's rusage. The baseline revision's `sandbox/` is exported
with `git archive` and put first on PYTHONPATH. `--limit-gb` caps the
address space of every run (a baseline that needs more is reported as such,
not allowed to take the machine down)."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPS = (b"Add", b"Mul", b"Identity", b"Sub", b"Relu")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _attr(key: bytes, value: int) -> bytes:
    """A NodeDef.attr map entry whose AttrValue sets `i` (field 3)."""
    return _field(5, _field(1, key) + _field(2, _varint(3 << 3) + _varint(value)))


def _name(index: int) -> bytes:
    """A short unique node name: base-62 digits."""
    digits = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = b""
    while True:
        index, digit = divmod(index, 62)
        out += digits[digit:digit + 1]
        if not index:
            return out


def crafted_graph(path: Path, megabytes: int, shape: str) -> int:
    """A GraphDef of about `megabytes` MB; returns its node count. Every node
    reads earlier ones (an intact graph). "tiny": short names, one input, one
    attr: the most nodes per byte. "attrs": four attrs per node set to values
    no other node uses."""
    target, written, count = megabytes * 1_000_000, 0, 0
    with open(path, "wb") as fh:
        while written < target:
            node = _field(1, _name(count)) + _field(2, OPS[count % len(OPS)])
            if shape == "tiny":
                node += _field(3, _name(count - 1)) if count else b""
                node += _field(5, _field(1, b"T") + _field(2, _varint(6 << 3) + _varint(1)))  # T: DT_FLOAT
            else:
                if count:
                    node += _field(3, _name(count - 1)) + _field(3, _name(count // 2) + b":0")
                for k, key in enumerate((b"T", b"alpha", b"beta", b"gamma")):
                    node += _attr(key, count * 4 + k)
            chunk = _field(1, node)
            fh.write(chunk)
            written += len(chunk)
            count += 1
        fh.write(_field(4, _varint(1 << 3) + _varint(1500)))  # versions { producer: 1500 }
    return count


def crafted_keras(path: Path, megabytes: int) -> int:
    """A .keras zip whose config.json holds `megabytes` MB of one repeated
    character: it compresses ~1000x. Returns the config's size."""
    import zipfile
    pad = "x" * (megabytes * 1_000_000)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"class_name": "Functional", "config": {"layers": [], "pad": "%s"}}' % pad)
        archive.writestr("metadata.json", '{"keras_version": "3.9.0"}')
    return len(pad)


def measure(python_path: str, model: Path, limit_gb: float) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, last output line) of one `sandbox check`."""
    env = {**os.environ, "PYTHONPATH": python_path}
    limit = int(limit_gb * (1 << 30))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "check", str(model), "--against", "tf==2.15"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=cap,
                            cwd=model.parent)  # not the checkout: `-m` puts the working folder first
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _pid, _status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    lines = [line for line in output.splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, seconds, (lines[-1] if lines else "")[:90]


def export(rev: str, folder: Path) -> None:
    folder.mkdir(parents=True)
    archive = folder / "base.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "sandbox"], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="726923b", help="revision to compare with (default: before issue 13)")
    parser.add_argument("--this", help="measure this revision instead of the working tree (e.g. HEAD)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 100], help="GraphDef sizes in MB")
    parser.add_argument("--shapes", nargs="+", default=["tiny", "attrs"], choices=["tiny", "attrs", "keras-bomb"])
    parser.add_argument("--limit-gb", type=float, default=12.0, help="address-space cap of every run")
    parser.add_argument("--only-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export(args.baseline, work / "base")
        trees = {f"baseline {args.baseline}": str(work / "base"), "this tree": str(ROOT)}
        if args.this:
            export(args.this, work / "this")
            trees["this tree"] = str(work / "this")
        if args.only_baseline:
            del trees["this tree"]
        print(f"{'graph':>20} {'tree':>18} {'peak RSS':>10} {'x file':>7} {'time':>8}  output")
        for megabytes, shape in [(m, s) for m in args.sizes for s in args.shapes]:
            model = work / f"crafted-{megabytes}mb.{'keras' if shape == 'keras-bomb' else 'pb'}"
            nodes = crafted_keras(model, megabytes) if shape == "keras-bomb" else crafted_graph(model, megabytes, shape)
            size_mb = model.stat().st_size / (1 << 20)
            results = {}
            for label, path in trees.items():
                rss, seconds, line = measure(path, model, args.limit_gb)
                results[label] = (rss, seconds)
                print(f"{shape:>5} {megabytes:>4} MB {nodes:>7}n {label:>18} {rss:8.0f}MB {rss / size_mb:6.1f}x {seconds:7.1f}s  {line}",
                      flush=True)
            if len(results) == 2:
                (base_rss, base_s), (rss, seconds) = results.values()
                print(f"{'':>20} {'ratio this/base':>18} {rss / base_rss:9.2f}  {'':>7} {seconds / base_s:7.2f}", flush=True)
            model.unlink()


if __name__ == "__main__":
    main()
