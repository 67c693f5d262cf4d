"""Sphinx extension: execute the Python blocks of docs/tutorial.md at every build.

The blocks run in order in one namespace, in the directory docs/_generated (so the run
file and the figures they write land there, next to nothing committed); the text each
block prints is inserted after it as a ``text`` block.  An exception fails the build,
so the tutorial cannot rot.  `run_blocks` is also what tests/test_docs.py runs.
"""
import contextlib
import io
import os
import re
import shutil

BLOCK = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)


def run_blocks(text, workdir, name="tutorial.md"):
    """Execute the ```python blocks of ``text`` in ``workdir`` (emptied first: the files of
    a previous build go); return the text with each block's printed output after it."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    scope = {"__name__": "__tutorial__"}
    out, last = [], 0
    here = os.getcwd()
    os.chdir(workdir)
    try:
        for match in BLOCK.finditer(text):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                line = text.count("\n", 0, match.start()) + 2
                exec(compile(match.group(1), f"{name}, line {line}", "exec"), scope)
            out.append(text[last:match.end()])
            if printed.getvalue():
                out.append("```text\n" + printed.getvalue().rstrip("\n") + "\n```\n")
            last = match.end()
    finally:
        os.chdir(here)
    return "".join(out) + text[last:]


def _execute(app, docname, source):
    if docname == "tutorial":
        source[0] = run_blocks(source[0], os.path.join(app.srcdir, "_generated"))


def setup(app):
    app.connect("source-read", _execute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
