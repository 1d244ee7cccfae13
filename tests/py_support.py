"""py_support: what the Python interop tests (tests/py_test_*.py) share.

need(*modules)   import the named modules, or exit 77 (ctest's skip) naming the missing one
test_binary(name) the path of a test executable in $DSV32_BUILD_DIR, or exit 77 naming it
"""
import importlib
import os
import sys

SKIP = 77


def need(*modules):
    """The imported modules, in order; exit 77 when one is not installed."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        print(f"skip: {e.name or 'a module'} missing (needs {', '.join(modules)})")
        sys.exit(SKIP)


def test_binary(name):
    """$DSV32_BUILD_DIR/name; exit 77 when it is not there."""
    build = os.environ.get("DSV32_BUILD_DIR")
    exe = os.path.join(build, name) if build else None
    if not exe or not os.path.exists(exe):
        print(f"skip: {name} binary not found (DSV32_BUILD_DIR)")
        sys.exit(SKIP)
    return exe
