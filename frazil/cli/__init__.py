"""The ``frazil`` command line (Typer and Rich).

- ``main`` — the entry point: errors become one line and a non-zero exit.
- ``config_commands`` — work on a dataset config without a server: validate, show, schema, expr.
- ``db_commands`` — the production database: init, submit, list, inspect and control datasets
  (the dataset commands work on the database directly, not through the server).
- ``server_commands`` — run the service: ``frazil server``, ``frazil token``, ``frazil quota``.
- ``unmonitored`` — ``frazil run``: a dataset's jobs without database or server.
- ``demo`` — ``frazil demo``: a server, a local site and a dataset in one process.
- ``text`` — text from users, pilots and configs made safe to print.
"""
