"""``python -m benchmarks COMMAND ...``: see ``benchmarks/cli.py`` (``--help`` lists the commands)."""
from .cli import main

main()
