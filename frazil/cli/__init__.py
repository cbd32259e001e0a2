"""The ``frazil`` command line: thin commands over the model (and later the HTTP client)."""
