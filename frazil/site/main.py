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


def run(daemon: SiteDaemon, stop: threading.Event, *, once: bool = False) -> None:
    """Register, then run rounds until ``stop`` is set (or once)."""
    daemon.register()
    interval = daemon.config.queue.poll_interval
    while not stop.is_set():
        try:
            done = daemon.step(time.time())
            if done.claimed or done.ended:
                log.info(
                    "claimed %d, submitted %d, %d batch job(s) ended (%d reset)",
                    done.claimed, done.submitted, done.ended, done.reset,
                )  # fmt: skip
        except FrazilError as exc:
            # the server or the batch system is away: try again next round
            log.warning("round failed: %s", exc)
        if once:
            return
        stop.wait(interval)


def main(config_path: Path, *, once: bool = False) -> None:
    """Run the site daemon of ``config_path`` until SIGTERM or SIGINT."""
    daemon = build(load_site_config(config_path))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(daemon, stop, once=once)
