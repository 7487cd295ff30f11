"""``python -m announcer`` is the ``announcer`` command."""

from announcer.cli import main

if __name__ == "__main__":
    main(prog_name="announcer")
