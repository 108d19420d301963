"""The suite keeps out of the real home: tests/conftest.py gives the session (and every command it starts)
a HOME of its own."""
import os
import pwd
import subprocess
import sys
from pathlib import Path


def test_the_suite_runs_in_a_home_of_its_own():
    real = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    home = Path.home().resolve()
    assert home != real and not home.is_relative_to(real), "tests would write into the real home"
    for where in ("~/.cache/quads-search", "~/.ray/auth_token"):  # the default cache, Ray's token
        assert not Path(os.path.expanduser(where)).resolve().is_relative_to(real), where
    out = subprocess.run([sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"],
                         capture_output=True, text=True, timeout=60)
    assert Path(out.stdout.strip()).resolve() == home  # and so do the commands the tests start
