"""The documentation site (mkdocs.yml, docs/) builds without a single warning.

``mkdocs build --strict`` fails on any warning; mkdocs.yml makes every problem MkDocs can see a
warning: a link to a missing page or anchor, a page left out of the navigation, a navigation
entry without its page.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_site_builds_strictly_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").exists()


def test_every_page_is_in_the_navigation():
    """Also without MkDocs' own check: each page of docs/ is named in mkdocs.yml's nav."""
    config = (ROOT / "mkdocs.yml").read_text()
    missing = [page.name for page in sorted((ROOT / "docs").glob("*.md")) if f": {page.name}" not in config]
    assert missing == []
