"""The per-site daemon (soapqueue in "The IceProd Framework"): claims tasks and runs pilots
through a plugin. ``daemon`` runs one round (``SiteDaemon.step``) over a ``tracker`` of batch
jobs and the site's mode: ``single`` (a pilot per task), ``dag`` (whole jobs as batch-side
DAGs) or ``multi`` (multi-task pilots), which share ``mode`` and keep ``records``; ``main`` is
the loop, ``config`` the site's settings."""
