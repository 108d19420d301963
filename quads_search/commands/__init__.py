"""One module per `quads-search` subcommand, each with `add_parser(subparsers, summary)`; `cli`
imports only the chosen one: run, train, pareto, profile, data, evaluate, export, sensitivity,
whisper."""
