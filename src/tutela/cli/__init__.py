"""The ``tutela`` command line (Typer). One module per command group; :mod:`.main` joins them."""
