"""Install the page's front-end library (onnxruntime-web) from the npm lock file, without node.

service/web/vendor/package-lock.json pins the package and its sha512 integrity; this script
downloads that one tarball from the npm registry, checks the integrity, and extracts only the
browser bundles the Live mode loads into service/web/vendor/ort/ (ignored by git, served under
/static/vendor/ort/). The bundles are self-contained, so the package's own dependencies (listed in
the lock for `npm ci`) are not needed. Nothing is fetched at run time: `make run`, `make test` and
the image build run this once; it does nothing when the installed files match the lock.

    python scripts/fetch_web_vendor.py            # NPM_CONFIG_REGISTRY overrides the registry
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "service" / "web" / "vendor"
TARGET = VENDOR / "ort"
CACHE = ROOT / ".cache" / "web-vendor"
PACKAGE = "onnxruntime-web"
# The ES-module bundles and the WebAssembly each of them loads: ort.wasm.min.mjs (WebAssembly
# SIMD, threaded when the page is cross-origin isolated) and ort.webgpu.min.mjs (WebGPU, plus its
# asyncify build of the same WebAssembly for the operators WebGPU lacks).
FILES = [
    "package.json",  # its name, version and licence (MIT), kept beside the bundles
    "dist/ort.wasm.min.mjs",
    "dist/ort.webgpu.min.mjs",
    "dist/ort-wasm-simd-threaded.mjs",
    "dist/ort-wasm-simd-threaded.wasm",
    "dist/ort-wasm-simd-threaded.asyncify.mjs",
    "dist/ort-wasm-simd-threaded.asyncify.wasm",
]
STAMP = ".integrity"
TIMEOUT_S = 120


class VendorError(RuntimeError):
    """The lock file, the download or the tarball is not what it should be."""


def locked_package() -> tuple[str, str, str]:
    """(version, tarball URL, integrity) of onnxruntime-web in the lock file."""
    lock = json.loads((VENDOR / "package-lock.json").read_text())
    try:
        entry = lock["packages"][f"node_modules/{PACKAGE}"]
        version, integrity = entry["version"], entry["integrity"]
    except KeyError as missing:
        raise VendorError(f"package-lock.json has no {PACKAGE} entry with {missing}") from None
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    default = f"{registry}/{PACKAGE}/-/{PACKAGE}-{version}.tgz"
    return version, entry.get("resolved", default), integrity


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"the lock's integrity uses {algorithm}; only sha512 is accepted")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(
            f"{PACKAGE} tarball has integrity sha512-{actual}, the lock says {integrity}"
        )


def tarball(url: str, version: str, integrity: str) -> bytes:
    """The verified tarball, from the local cache or else the registry."""
    cached = CACHE / f"{PACKAGE}-{version}.tgz"
    if cached.is_file():
        data = cached.read_bytes()
        try:
            check_integrity(data, integrity)
            return data
        except VendorError:
            cached.unlink()
    print(f"fetching {url}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        data = response.read()
    check_integrity(data, integrity)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def installed(integrity: str) -> bool:
    stamp = TARGET / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != integrity:
        return False
    return all((TARGET / Path(name).name).is_file() for name in FILES)


def extract(data: bytes, integrity: str) -> None:
    """Write FILES (flattened) into TARGET, replacing it whole so a failure leaves no mix."""
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ort-", dir=TARGET.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from a server of another user
    try:
        with tempfile.TemporaryFile() as raw:
            raw.write(data)
            raw.seek(0)
            with tarfile.open(fileobj=raw, mode="r:gz") as archive:
                for name in FILES:
                    try:
                        member = archive.extractfile(f"package/{name}")
                    except KeyError:
                        member = None
                    if member is None:
                        raise VendorError(f"{PACKAGE} tarball has no {name}")
                    (staging / Path(name).name).write_bytes(member.read())
        (staging / STAMP).write_text(integrity + "\n")
        if TARGET.exists():
            shutil.rmtree(TARGET)
        staging.rename(TARGET)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    try:
        version, url, integrity = locked_package()
        if installed(integrity):
            (TARGET / STAMP).touch()  # newer than the lock again, for make
            return 0
        extract(tarball(url, version, integrity), integrity)
    except (VendorError, OSError) as error:
        print(f"fetch_web_vendor: {error}", file=sys.stderr)
        return 1
    print(f"{PACKAGE} {version} installed in {TARGET.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
