"""`python -m alloop ...` is the same program as the `alloop` command."""

from alloop.cli import main

if __name__ == "__main__":
    main()
