"""The `ewh` command line: `main.py` builds the parser; every other module here is one
subcommand (or a few), registered with `ewh.cli.main.command`."""
