"""Python imports this at start-up when tests/guard is on PYTHONPATH (tests/guard/unpickle_guard.py's
`guard_env`): with the log variable set, the process is guarded against unpickling from the start."""
import os

if os.environ.get("QUADS_TEST_UNPICKLE_LOG"):
    import unpickle_guard

    unpickle_guard.install(os.environ["QUADS_TEST_UNPICKLE_LOG"])
