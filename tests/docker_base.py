"""A minimal Debian image with Python, for tests on a machine that reaches no
image registry: debootstrap from the mirror apt uses, `docker import`, cached
by tag (built once per engine)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import docker
import docker.errors

from sandbox import commands

TAG = "sandbox-test/debian-python:bookworm-1"
SUITE = "bookworm"  # its python3 is 3.11
PACKAGES = "python3,python3-venv"  # python3-venv brings ensurepip (pip's wheel)
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# Not needed at run time; dropped to keep the image small (~130 MB).
PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale",
         "usr/share/info")


def apt_mirror(root: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    files = sorted(root.glob("sources.list.d/*.sources")) + [root / "sources.list"] \
        + sorted(root.glob("sources.list.d/*.list"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        uris: list[str] = re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE)
        for uri in uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return FALLBACK_MIRROR


def ensure_image(client: docker.DockerClient, log: Path) -> str:
    """The tag of the Debian + Python image, built and imported if missing."""
    try:
        client.images.get(TAG)
        return TAG
    except docker.errors.ImageNotFound:
        pass
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (apt-get install -y debootstrap)")
    with tempfile.TemporaryDirectory(prefix="sandbox-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        commands.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(rootfs), apt_mirror()],
                     log=log, timeout=1200)
        for sub in PRUNE:
            shutil.rmtree(rootfs / sub, ignore_errors=True)
        commands.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], log=log, timeout=600)
        repository, tag = TAG.split(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    client.images.get(TAG)
    return TAG


def ensure_python_image(client: docker.DockerClient, minor: str, log: Path) -> str:
    """A stand-in for the official python:<minor> image (no registry is
    reachable here): the Debian base with this host's own build of that
    Python (pyenv's, self-contained but for Debian's libraries) copied in at
    the same path, first on PATH as python3. Tagged sandbox-test/python:<minor>."""
    import io
    import tarfile

    from sandbox import pythons

    tag = f"sandbox-test/python:{minor}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    found = pythons.discover().find(minor)
    if found is None:
        raise RuntimeError(f"no Python {minor} on this host to build {tag} from")
    prefix = found.path.resolve().parent.parent  # .../versions/3.7.16
    skip = {prefix / "lib" / f"python{minor}" / "test"}
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(str(prefix), arcname=str(prefix).lstrip("/"),
                filter=lambda info: None if Path("/", info.name) in skip or "__pycache__" in info.name else info)
        for name in ("python3", f"python{minor}"):
            link = tarfile.TarInfo(f"usr/local/bin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, str(prefix / "bin" / f"python{minor}")
            tar.addfile(link)
    container = client.containers.create(ensure_image(client, log), command=["true"])
    try:
        container.put_archive("/", data.getvalue())
        repository, version = tag.split(":")
        container.commit(repository=repository, tag=version)
    finally:
        container.remove(force=True)
    return tag
