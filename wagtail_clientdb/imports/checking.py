"""Checking a file's rows chunk by chunk (:func:`.rows.check_row`), in a helper process for long files.

Checking is pure Python (reading phone numbers and email addresses, mostly), needs no
database, and was about a third of an import's time. For a file longer than one chunk,
a helper process checks the next chunk while this process matches and saves the current
one, so that the work runs on two processor cores.

The helper is forked from this process: it starts in milliseconds and inherits Django,
the lookups of the import (groups, branches, attribute definitions) and the language,
and it never uses this process's database connection. On other systems than Linux
(macOS offers fork, but its system libraries may crash in a forked child), every chunk is
checked here, one after the other.
"""

import gc
import itertools
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

from django.utils import translation

from .rows import check_row

#: What the helper checks with, set when it starts (it is the helper's own copy).
_helper_state = {}


def check_chunk(chunk, targets, context):
    """``chunk``: ``(line, raw cells)`` rows → ``{line: CheckedRow}``."""
    used = [(index, target) for index, target in enumerate(targets) if target]
    checked = {}
    for line, raw in chunk:
        cells = {target: raw[index] if index < len(raw) else None for index, target in used}
        checked[line] = check_row(cells, len(raw) - len(targets), context)
    return checked


def _start_helper(targets, context, language):
    _helper_state.update(targets=targets, context=context, language=language)
    # The importing process collects garbage once per chunk (runner.gc_frozen); its helper,
    # which keeps no rows, collects as usual.
    gc.enable()


def _check_in_helper(chunk):
    with translation.override(_helper_state["language"]):
        return check_chunk(chunk, _helper_state["targets"], _helper_state["context"])


def can_fork():
    # Linux only: macOS offers fork, but system libraries there may crash in a forked child.
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def checked_chunks(chunks, targets, context):
    """``(chunk, {line: CheckedRow})`` for every chunk of ``chunks``, in order."""
    chunks = iter(chunks)
    ahead = list(itertools.islice(chunks, 2))
    if len(ahead) < 2 or not can_fork():
        for chunk in itertools.chain(ahead, chunks):
            yield chunk, check_chunk(chunk, targets, context)
        return
    helper = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_helper,
        initargs=(targets, context, translation.get_language()),  # inherited by the fork, not pickled
    )
    with helper:
        # The first chunk is checked here while the helper starts on the second.
        first, second = ahead
        pending = (second, helper.submit(_check_in_helper, second))
        yield first, check_chunk(first, targets, context)
        for chunk in chunks:
            following = (chunk, helper.submit(_check_in_helper, chunk))
            yield pending[0], pending[1].result()
            pending = following
        yield pending[0], pending[1].result()
