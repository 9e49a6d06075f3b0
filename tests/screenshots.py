"""Where the browser tests save their screenshots.

`SCREENSHOTS_DIR=docs/img make test` refreshes the pictures the docs show; without it they
go to a temporary folder, so a test run never rewrites tracked files.
"""

import os
import tempfile
from pathlib import Path


def screenshots_folder() -> Path:
    folder = os.environ.get("SCREENSHOTS_DIR")
    path = Path(folder) if folder else Path(tempfile.gettempdir()) / "nextstep-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
