"""``python -m listener.cli``: the same as the ``listener`` command."""

from listener.cli import main

main()
