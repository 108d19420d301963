"""Progress lines go where the caller says: `show_progress` once per command, `to_file` per sweep trial."""
import logging

import pytest

from quads_search.log import show_progress, to_file

pytestmark = pytest.mark.usefixtures("quads_logger")  # put back after each test: the logger is process-wide


def test_show_progress_twice_shows_each_line_once_on_the_stream_of_the_moment(capsys):
    show_progress()
    show_progress()
    logging.getLogger("quads_search.core.run").info("stage 1/3 distill")
    assert capsys.readouterr() == ("stage 1/3 distill\n", "")
    show_progress("stderr")  # --json: stdout holds the JSON only
    logging.getLogger("quads_search.sweep.driver").info("Ray dashboard: http://127.0.0.1:8265")
    assert capsys.readouterr() == ("", "Ray dashboard: http://127.0.0.1:8265\n")


def test_to_file_appends_a_trials_lines_only_while_active(tmp_path, quads_logger):
    path, trial = tmp_path / "train.log", logging.getLogger("quads_search.core.run")
    path.write_text("earlier\n")
    level = quads_logger.level
    with to_file(path):
        trial.info("stage 1/3 distill")
    trial.info("after the trial")
    assert path.read_text() == "earlier\nstage 1/3 distill\n"
    assert quads_logger.level == level and not any(isinstance(h, logging.FileHandler) for h in quads_logger.handlers)
