"""The HTTP service: the REST API (and later the web pages) over the services, plus daemons."""
