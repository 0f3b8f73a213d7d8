"""What an installed copy of the app contains: every module directory is a package."""

from pathlib import Path

import wagtail_clientdb


def test_every_directory_with_modules_is_a_package():
    # setuptools' package finder leaves out a directory without __init__.py: a wheel would
    # lack its modules while a checkout (and every other test) still imports them.
    root = Path(wagtail_clientdb.__file__).parent
    missing = sorted(
        str(directory.relative_to(root))
        for directory in [root, *root.rglob("*")]
        if directory.is_dir() and "__pycache__" not in directory.parts and any(directory.glob("*.py"))
        and not (directory / "__init__.py").exists()
    )
    assert missing == []
