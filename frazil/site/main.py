"""``frazil site``: the site daemon's loop, stopped cleanly by SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from frazil.batch.base import load_plugin
from frazil.client import Client
from frazil.errors import AuthError, Forbidden, FrazilError, RoundFailed
from frazil.site.config import SiteConfig, load_site_config
from frazil.site.daemon import Round, SiteDaemon

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


def refused(daemon: SiteDaemon, exc: AuthError) -> AuthError:
    """The error a site stops with when the server refuses its token: that will not get
    better by waiting (an unknown or revoked token, another site's or role's token)."""
    name, url = daemon.config.name, daemon.config.server
    error = Forbidden if isinstance(exc, Forbidden) else AuthError
    return error(
        f"site {name!r} stops: the server at {url} refuses its token ({exc}); give it a "
        f"site token for {name!r} (frazil token create {name} --role site)"
    )


def run(daemon: SiteDaemon, stop: threading.Event, *, once: bool = False) -> None:
    """Register, then run rounds until ``stop`` is set (or once).

    A round that fails (the server or the batch system is away, the scratch directory is full)
    is retried after a pause that doubles each time, up to ``MAX_BACKOFF``; the first good
    round restores the pace. With ``once``, a failed round raises ``RoundFailed``. A token
    the server refuses (401: unknown or revoked; 403: another site's, or not a site token)
    raises ``AuthError`` (``Forbidden``) at once: no pause would mend it.
    """
    name = daemon.config.name
    interval = daemon.config.queue.poll_interval
    pause = interval
    registered = False
    while not stop.is_set():
        try:
            if not registered:
                daemon.register()
                registered = True
                log.info("site %s registered with %s", name, daemon.config.server)
            done = daemon.step(time.time())
            if pause > interval:
                log.warning("site %s is working again", name)
            pause = interval
            _report(daemon, done)
        except AuthError as exc:
            raise refused(daemon, exc) from exc
        except (FrazilError, OSError) as exc:  # OSError: the scratch is full or unwritable
            if once:
                raise RoundFailed(f"site {name!r}: the round failed: {exc}") from exc
            pause = min(max(pause * 2, interval), MAX_BACKOFF)
            log.warning("round failed, next try in %g s: %s", pause, exc)
        if once:
            return
        stop.wait(pause)


def _report(daemon: SiteDaemon, done: Round) -> None:
    """One line for a round that did something; a line of detail (-v) for one that did not."""
    said = []
    if done.claimed or done.submitted:
        said.append(f"claimed {done.claimed}, submitted {done.submitted}")
    if done.ended:
        said.append(f"{done.ended} batch job(s) ended")
    if done.reset:
        said.append(f"{done.reset} task(s) reset")
    if done.cancelled:
        said.append(f"cancelled {done.cancelled} batch job(s) whose tasks no longer need them")
    if said:
        log.info("%s; %d batch job(s) queued or running", "; ".join(said), len(daemon.running))
    else:
        log.debug("a quiet round: %d batch job(s) queued or running", len(daemon.running))


def main(config_path: Path, *, once: bool = False) -> None:
    """Run the site daemon of ``config_path`` until SIGTERM or SIGINT; raises ``AuthError``
    when the server refuses the site's token, and with ``once`` ``RoundFailed`` when the
    round failed."""
    config = load_site_config(config_path)
    daemon = build(config)
    log.info(
        "site %s: %s plugin, %s-task pilots, up to %d batch jobs, a round every %g s",
        config.name, config.queue.plugin, config.queue.pilot, config.queue.max_queued,
        config.queue.poll_interval,
    )  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(daemon, stop, once=once)
    if not once:
        log.info("site %s stopped", config.name)
