"""Frames per second of the page's Live mode in headless chromium with its fake camera.

Starts the service on loopback (scripts/stack.py), opens the page in Debian's chromium with
`--use-fake-device-for-media-stream`, paints the camera for SECONDS at 320x240 and 640x480 with
each backend this browser offers (WebAssembly with threads, with one thread; WebGPU with
--webgpu, where the only adapter is SwiftShader's software one), and prints a table.

    python benchmarks/live_fps.py [--style vangogh] [--seconds 10] [--webgpu] [--chromium PATH]

fps = painted frames / wall time over the window, after a warm-up; each painted frame is a new
camera frame (the fake camera gives 30 fps), so 30 is the ceiling. Runs at full detail (the
network at the camera's size) and at "auto" detail (the page lowers the network's size until it
paints 10 fps or more; the canvas stays at the camera's size).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from stack import running_stack  # noqa: E402

SIZES = ["320x240", "640x480"]
WARM_UP_S = 3.0
BASE_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
WEBGPU_FLAGS = [
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-webgpu-adapter=swiftshader",
]
# (label, extra chromium flags, page query, warm-up seconds): what each run asks the page for.
# "auto" detail needs time to settle: one step per 2 s, at most five steps.
VARIANTS = [
    ("wasm threads, full detail", ["--disable-gpu"], "?live-detail=1", WARM_UP_S),
    ("wasm 1 thread, full detail", ["--disable-gpu"], "?live-detail=1&live-threads=1", WARM_UP_S),
    ("wasm threads, auto detail", ["--disable-gpu"], "?live-detail=auto", 12.0),
]
# Only with --webgpu: headless chromium here has no GPU, and its one WebGPU adapter is
# SwiftShader's software one, which paints 80x60 at ~0.05 fps (minutes per run).
WEBGPU_VARIANT = ("webgpu, ¼ detail", WEBGPU_FLAGS, "?live-detail=0.25&live-backend=webgpu", 30.0)
FRAMES = "() => Number(document.getElementById('live-canvas').dataset.frames || 0)"


def measure(
    browser: Browser, url: str, style: str, size: str, warm_up_s: float, seconds: float
) -> tuple[str, str, float]:
    """(backend the page chose, network size, fps) for one size; raises when it cannot paint."""
    page = browser.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("#live-start:not([disabled])")
        page.select_option("#live-style", style)
        page.select_option("#live-size", size)
        page.click("#live-start")
        painting_or_failed = f"() => ({FRAMES})() >= 3 || !document.getElementById('error').hidden"
        page.wait_for_function(painting_or_failed, timeout=180_000)
        if page.is_visible("#error"):
            raise RuntimeError(page.text_content("#error"))
        time.sleep(warm_up_s)
        start_frames, start = page.evaluate(FRAMES), time.monotonic()
        time.sleep(seconds)
        frames, elapsed = page.evaluate(FRAMES) - start_frames, time.monotonic() - start
        backend = page.text_content("#live-backend") or "?"
        detail = (page.text_content("#live-detail-text") or "?").removeprefix("network at ")
        page.click("#live-stop")
        return backend, detail, frames / elapsed
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="vangogh")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--chromium", default=os.environ.get("ACTIONSTYLE_CHROMIUM", "/usr/bin/chromium")
    )
    parser.add_argument("--webgpu", action="store_true", help="also WebGPU (see WEBGPU_VARIANT)")
    args = parser.parse_args()
    variants = [*VARIANTS, WEBGPU_VARIANT] if args.webgpu else VARIANTS

    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    rows = []
    with running_stack(workers=1) as stack, sync_playwright() as playwright:
        for label, flags, query, warm_up_s in variants:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, headless=True, args=[*BASE_ARGS, *flags]
            )
            try:
                for size in SIZES:
                    try:
                        url = f"{stack.url}/{query}"
                        backend, detail, fps = measure(
                            browser, url, args.style, size, warm_up_s, args.seconds
                        )
                        rows.append((label, size, backend, detail, f"{fps:.1f}"))
                    except Exception as error:  # a backend this browser lacks: say so, go on
                        reason = str(error).splitlines()[0][:70]
                        rows.append((label, size, "unavailable", "–", reason))
                    print(" | ".join(rows[-1]), file=sys.stderr)
            finally:
                browser.close()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"\n| run | camera and canvas | backend | network at | fps ({args.style}) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
