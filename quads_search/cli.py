"""`quads-search`: the command line. Each subcommand is one module of `quads_search.commands`.

Exit codes: 0 success, 2 user error (one line naming file, key and value), 1 failure, 130
interrupted. `--debug` shows the traceback as well; the exit code stays the same.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from quads_search.errors import UserError
from quads_search.log import show_progress

# subcommand -> (module that defines `add_parser(subparsers, summary)`, summary); each sets `func` on its
# parser. Only the chosen subcommand's module is imported: the others would load torch, Ray and
# transformers for nothing (`quads-search --help` imports none of them).
SUBCOMMANDS = {
    "run": ("quads_search.commands.run", "run a sweep (Ray Tune + Optuna) over a search-space YAML"),
    "train": ("quads_search.commands.train", "train one configuration end to end (no search)"),
    "pareto": ("quads_search.commands.pareto", "select models on accuracy against size and GMACs"),
    "profile": ("quads_search.commands.profile", "cost of a student (meta device: no memory, no training)"),
    "data": ("quads_search.commands.data", "synthesise a corpus or summarise a dataset"),
    "evaluate": ("quads_search.commands.evaluate",
                 "evaluate a packed model (default: on the dataset it was trained on)"),
    "export": ("quads_search.commands.export", "export a packed model as ONNX (weights kept packed) for a device"),
    "whisper": ("quads_search.commands.whisper", "pretrained Whisper from faster-whisper (CTranslate2) models"),
    "sensitivity": ("quads_search.commands.sensitivity",
                    "Hessian-trace sensitivity of each bit group and budgeted allocations (cached)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 too; keep it one line
        self.print_usage(sys.stderr)
        print(f"quads-search: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for `argv`: every subcommand listed, only the one `argv` names given its arguments."""
    parser = _Parser(prog="quads-search", description="Search QUADS (distillation interleaved with low-bit "
                     "quantization) of Whisper SLU students with Ray Tune and Optuna; pick models on the Pareto front.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module, summary) in SUBCOMMANDS.items():
        if name == chosen:
            importlib.import_module(module).add_parser(sub, summary)
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    show_progress()  # the library's progress lines, on stdout as the commands always printed them
    try:
        return args.func(args) or 0
    except UserError as exc:  # --debug adds the traceback; the exit code stays the user error's
        if args.debug:
            traceback.print_exc()
        print(f"quads-search: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("quads-search: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure, not a user error: say what, exit 1
        if args.debug:
            traceback.print_exc()
            return 1
        print(f"quads-search: failed: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
