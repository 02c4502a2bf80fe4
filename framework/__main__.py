"""``python -m framework``: the same as the ``framework`` command."""

from framework._cli import main

if __name__ == "__main__":
    main()
