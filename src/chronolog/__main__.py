"""``python -m chronolog``: the same as the ``chronolog`` command."""

from .cli import main

main(prog_name="chronolog")
