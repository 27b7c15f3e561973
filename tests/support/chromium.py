"""Headless Debian chromium for screenshots and browser tests (Playwright drives it; no download)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling out, which a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright):
    """Start headless chromium through a Playwright instance, with a clear error when it is missing."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(
            f"{CHROMIUM} is missing: run `make setup-test` (apt-get install chromium)"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
