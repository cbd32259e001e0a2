"""``frazil site``: the site daemon's loop, stopped cleanly by SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from frazil.batch.base import load_plugin
from frazil.client import Client
from frazil.errors import FrazilError
from frazil.site.config import SiteConfig, load_site_config
from frazil.site.daemon import SiteDaemon

log = logging.getLogger(__name__)


def build(config: SiteConfig) -> SiteDaemon:
    """A daemon for ``config``: its client and its plugin."""
    options = dict(config.queue.options)
    if config.queue.plugin.split("::")[0] == "local":
        options.setdefault("state_dir", config.storage.scratch / f"local-{config.name}")
    plugin = load_plugin(config.queue.plugin, **options)
    client = Client(config.server, config.api_token(), retry_for=config.queue.poll_interval * 10)
    return SiteDaemon(config, client, plugin)


#: Longest pause between rounds while the server or the batch system is away.
MAX_BACKOFF = 300.0


def run(daemon: SiteDaemon, stop: threading.Event, *, once: bool = False) -> None:
    """Register, then run rounds until ``stop`` is set (or once).

    A round that fails (the server or the batch system is away, the scratch directory is full)
    is retried after a pause that doubles each time, up to ``MAX_BACKOFF``; the first good
    round restores the pace.
    """
    interval = daemon.config.queue.poll_interval
    pause = interval
    registered = False
    while not stop.is_set():
        try:
            if not registered:
                daemon.register()
                registered = True
            done = daemon.step(time.time())
            if pause > interval:
                log.warning("site %s is working again", daemon.config.name)
            pause = interval
            if done.claimed or done.ended or done.cancelled:
                log.info(
                    "claimed %d, submitted %d, %d batch job(s) ended (%d reset), %d cancelled",
                    done.claimed, done.submitted, done.ended, done.reset, done.cancelled,
                )  # fmt: skip
        except (FrazilError, OSError) as exc:  # OSError: the scratch is full or unwritable
            pause = min(max(pause * 2, interval), MAX_BACKOFF)
            log.warning("round failed, next try in %.0f s: %s", pause, exc)
        if once:
            return
        stop.wait(pause)


def main(config_path: Path, *, once: bool = False) -> None:
    """Run the site daemon of ``config_path`` until SIGTERM or SIGINT."""
    daemon = build(load_site_config(config_path))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(daemon, stop, once=once)
