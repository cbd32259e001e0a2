"""The ``frazil`` command line (Typer, and Rich on a terminal).

- ``entry`` — the program: Ctrl-C at any moment exits 130 with one line.
- ``main`` — the commands; errors become one line and a non-zero exit.
- ``connect`` — where commands send their requests: a server (``credentials``) or the
  embedded database served in this process (``inprocess``).
- ``dataset_commands`` — submit, list, inspect and control datasets, through the API.
- ``account_commands`` — ``login``, ``logout``, ``servers``; ``quota`` through the API.
- ``config_commands`` — work on a dataset config without a server: validate, show, schema, expr.
- ``server_commands`` — on the server's host, on the database directly: ``init``,
  ``server``, ``materialize``, ``token``; the ``site`` and ``pilot`` daemons, ``demo``.
- ``unmonitored`` — ``frazil run``: a dataset's jobs without database or server.
- ``demo`` — ``frazil demo``: a server, a local site and a dataset in one process.
- ``output`` — listings for a terminal, a pipe, tsv or json; ``text`` — other people's text
  made safe to print.
"""
