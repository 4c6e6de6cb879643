"""Build the images the integration suite needs, without any registry.

Run from the repository root:

    python -m tests.images.build [--json] [--force] [--prune]

A Debian base is made with debootstrap and ``docker import``; every other image is a small
``docker build`` on top of it. Each image is tagged ``clearml-lightning-test/<name>:<hash12>``
where the hash covers everything the image is made from, so an unchanged image is found with
``docker image inspect`` and not rebuilt. Progress goes to stderr, the settings to stdout.

``build_all()`` returns the image settings the stack reads (the same keys users set to pull
from a private registry) plus the test-only ``SSHD_IMAGE`` and ``TEST_BASE_IMAGE``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
PREFIX = "clearml-lightning-test"
LABEL = "org.clearml-lightning.test-image"

# settings key -> context directory under tests/images/ (the base has no directory)
IMAGES: dict[str, str] = {
    "CLEARML_SERVER_IMAGE": "server",
    "MONGO_IMAGE": "mongo",
    "ELASTIC_IMAGE": "elastic",
    "REDIS_IMAGE": "redis",
    "NGINX_IMAGE": "nginx",
    "SSHD_IMAGE": "sshd",
}
BASE_KEY = "TEST_BASE_IMAGE"
# contexts that get the host-downloaded wheels copied in as ./wheels
NEEDS_WHEELS = {"server"}
REQUIREMENTS = HERE / "requirements.txt"
BUILD_WORKERS = 3
# local tool caches are neither hashed nor sent to the engine
IGNORED = ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache")
# Debian bookworm ships CPython 3.11
WHEEL_PLATFORM = ["--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp"]


class BuildError(RuntimeError):
    """A build step failed; the message says which and what to do."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise BuildError(f"{argv[0]} not found: install it first") from exc
    except subprocess.CalledProcessError as exc:
        output = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        tail = "\n".join(output.strip().splitlines()[-20:])
        message = f"command failed ({exc.returncode}): {' '.join(argv)}" + (f"\n{tail}" if tail else "")
        raise BuildError(message) from exc


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def tree_digest(root: Path) -> str:
    """Hash of every file under root: relative path, executable bit and content."""
    parts: list[str | bytes] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not set(IGNORED) & set(p.parts)):
        parts += [path.relative_to(root).as_posix(), str(os.access(path, os.X_OK)), path.read_bytes()]
    return digest(*parts)


def cache_dir() -> Path:
    """Where downloaded wheels and the build lock live: $CLEARML_TEST_IMAGES_CACHE, else the user's cache.

    The test suite runs with a temporary HOME and sets the variable to the real user's cache."""
    if os.environ.get("CLEARML_TEST_IMAGES_CACHE"):
        return Path(os.environ["CLEARML_TEST_IMAGES_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clearml-lightning"


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Serialise concurrent builds (parallel test workers) so the base is made once."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "images.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# --- base section: everything here is part of the base image hash ---------------------------

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "python3", "python3-pip", "ca-certificates", "curl", "procps", "iproute2", "tini",
    "redis-server", "nginx-light", "openssh-server", "openssh-client", "autossh", "openssl",
)
# files made at install time that must differ per container or come from the engine
ROOTFS_REMOVE = (
    "etc/ssh/ssh_host_*", "etc/hostname", "etc/resolv.conf", "etc/machine-id",
    "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*", "var/log/*.log", "var/log/apt/*",
)
IMPORT_CHANGES = (
    "ENV LANG=C.UTF-8",
    "ENV PYTHONUNBUFFERED=1",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    f"LABEL {LABEL}=base",
    'CMD ["/bin/bash"]',
)


def mirror() -> str:
    return os.environ.get("DEBIAN_MIRROR") or DEFAULT_MIRROR


def base_hash() -> str:
    section = "".join(inspect.getsource(f) for f in (make_rootfs, import_rootfs, unmount_below))
    return digest(SUITE, mirror(), "\n".join(PACKAGES), "\n".join(ROOTFS_REMOVE), "\n".join(IMPORT_CHANGES), section)


def unmount_below(root: Path) -> None:
    """Unmount anything a failed debootstrap left mounted, so removing the tree stays inside it."""
    with open("/proc/mounts") as fh:
        points = [line.split()[1] for line in fh]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def make_rootfs(root: Path) -> None:
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror()]
    log(f"base: {' '.join(argv)}")
    run(argv, stdout=subprocess.DEVNULL)
    for pattern in ROOTFS_REMOVE:
        for path in root.glob(pattern):
            path.unlink()


def import_rootfs(root: Path, ref: str) -> None:
    changes = [arg for change in IMPORT_CHANGES for arg in ("-c", change)]
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        run(["docker", "import", *changes, "-", ref], stdin=tar.stdout, stdout=subprocess.DEVNULL)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise BuildError("tar of the debootstrap tree failed")


def build_base(force: bool = False) -> str:
    ref = f"{PREFIX}/base:{base_hash()[:12]}"
    start = time.monotonic()
    if not force and image_exists(ref):
        log(f"base: cached {ref} ({time.monotonic() - start:.1f}s)")
        return ref
    if os.geteuid() != 0:
        raise BuildError("the base image needs debootstrap, which must run as root: rerun with sudo")
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap not found: apt-get install debootstrap")
    root = Path(tempfile.mkdtemp(prefix="clearml-lightning-rootfs-"))
    try:
        make_rootfs(root)
        import_rootfs(root, ref)
    finally:
        unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
    log(f"base: built {ref} ({time.monotonic() - start:.1f}s)")
    return ref


# --- wheels ---------------------------------------------------------------------------------


def wheels_dir() -> Path:
    """Download the pinned wheels for Debian's python once, keyed by the requirements' hash."""
    key = digest(REQUIREMENTS.read_bytes(), " ".join(WHEEL_PLATFORM))[:16]
    target = cache_dir() / "wheels" / key
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *WHEEL_PLATFORM,
             "-d", str(tmp), "-r", str(REQUIREMENTS)], stdout=subprocess.DEVNULL)
        shutil.copy(REQUIREMENTS, tmp / "requirements.txt")
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wheels: downloaded to {target}")
    return target


# --- derived images -------------------------------------------------------------------------


def image_id(ref: str) -> str:
    return run(["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True).stdout.strip()


def image_hash(name: str, base_ref: str) -> str:
    # the base's image id, not its tag: a rebuilt base (new id) means new derived images
    parts: list[str | bytes] = [image_id(base_ref), tree_digest(HERE / name)]
    if name in NEEDS_WHEELS:
        parts.append(REQUIREMENTS.read_bytes())
    return digest(*parts)


def build_image(name: str, base_ref: str, force: bool = False) -> str:
    ref = f"{PREFIX}/{name}:{image_hash(name, base_ref)[:12]}"
    start = time.monotonic()
    if not force and image_exists(ref):
        log(f"{name}: cached {ref} ({time.monotonic() - start:.1f}s)")
        return ref
    with tempfile.TemporaryDirectory(prefix=f"clearml-lightning-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(HERE / name, context, ignore=shutil.ignore_patterns(*IGNORED))
        if name in NEEDS_WHEELS:
            shutil.copytree(wheels_dir(), context / "wheels")
        # output is kept for the error message only (the legacy builder also prints a deprecation notice)
        run(["docker", "build", "-q", "--build-arg", f"BASE={base_ref}", "--label", f"{LABEL}={name}",
             "-t", ref, str(context)], capture_output=True)
    log(f"{name}: built {ref} ({time.monotonic() - start:.1f}s)")
    return ref


def build_all(force: bool = False) -> dict[str, str]:
    """Build (or find cached) every test image; return settings key -> image reference."""
    with build_lock():
        base = build_base(force)
        if any(name in NEEDS_WHEELS for name in IMAGES.values()):
            wheels_dir()  # once, before the parallel builds
        # a few builds at once: the engine spends most of each step mounting layers, not computing
        with ThreadPoolExecutor(max_workers=BUILD_WORKERS) as pool:
            futures = {key: pool.submit(build_image, name, base, force) for key, name in IMAGES.items()}
            refs = {BASE_KEY: base} | {key: future.result() for key, future in futures.items()}
    return refs


def split_ref(ref: str) -> tuple[str, str]:
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def tag_versions(ref: str, versions: list[str]) -> list[str]:
    """Tag ref as <repo>:<version> for each version (cheap aliases for upgrade tests)."""
    repo, _ = split_ref(ref)
    out = []
    for version in versions:
        run(["docker", "tag", ref, f"{repo}:{version}"])
        out.append(f"{repo}:{version}")
    return out


def variant(ref: str, env: dict[str, str]) -> str:
    """An image FROM ref with env baked in (e.g. STANDIN_VERSION), cached by hash."""
    lines = [f"FROM {ref}"] + [f"ENV {k}={json.dumps(v)}" for k, v in sorted(env.items())]
    dockerfile = "\n".join(lines) + "\n"
    repo, _ = split_ref(ref)
    out = f"{repo}:v-{digest(image_id(ref), dockerfile)[:12]}"
    if not image_exists(out):
        run(["docker", "build", "-q", "-t", out, "-"], input=dockerfile.encode(), capture_output=True)
        log(f"variant: built {out} ({', '.join(f'{k}={v}' for k, v in sorted(env.items()))})")
    return out


def prune(keep: set[str]) -> list[str]:
    """Untag every clearml-lightning-test image not in keep (older hashes, variants, version tags)."""
    listed = run(["docker", "image", "ls", "--filter", f"reference={PREFIX}/*", "--format", "{{.Repository}}:{{.Tag}}"],
                 capture_output=True, text=True).stdout.split()
    stale = sorted(set(listed) - keep)
    if stale:
        subprocess.run(["docker", "image", "rm", *stale], capture_output=True)
        log(f"pruned {len(stale)} stale image tags")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.images.build", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the settings as JSON instead of KEY=value")
    parser.add_argument("--force", action="store_true", help="rebuild every image even if its hash tag exists")
    parser.add_argument("--prune", action="store_true", help="then remove older test image tags and variants")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        refs = build_all(force=args.force)
        if args.prune:
            prune(set(refs.values()))
    except BuildError as exc:
        log(f"error: {exc}")
        return 1
    log(f"all images ready ({time.monotonic() - start:.1f}s)")
    if args.json:
        print(json.dumps(refs, indent=2))
    else:
        print("\n".join(f"{k}={v}" for k, v in refs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
