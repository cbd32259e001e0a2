"""A site's configuration (``site.toml``): the queueing options, system parameters and job
environment of a site in "The IceProd Framework" (§3.2), plus who the site is, what its slots
offer and where its scratch space is.

::

    name = "local"
    server = "http://127.0.0.1:8800"
    token_file = "~/.frazil/site-token"        # or token = "frz_..."

    [queue]
    plugin = "local"                # a batch plugin; "name::variant" picks a variant
    max_queued = 8                  # tasks kept queued or running here at most
    claim_batch = 8                 # tasks claimed per round at most
    submit_rate = 50                # batch submissions per round at most
    poll_interval = 5.0             # seconds between rounds
    heartbeat = 60.0                # pilots' heartbeat interval, seconds
    pilot = "single"                # "single": one batch job per task; "multi": pilots
                                    # that run task after task until idle
    pilot_idle = 60.0               # seconds a multi-task pilot waits for work, then ends
    options = { cpus = 2, memory = 8.0, gpus = 1 }   # for the plugin

    [resources]                     # what one slot offers: a task (single), or the tasks a
                                    # multi-task pilot runs at once, together
    cpu = 1
    gpu = 1
    memory = 2.0
    disk = 10.0
    time = 24.0
    os = "debian12"

    [attributes]                    # free site attributes tasks may require
    cvmfs = true

    [system]                        # $system() values for tasks run here
    storage = "file:///data/sim"

    [environment]                   # added to every pilot's environment
    OMP_PROC_BIND = "true"

    [storage]                       # on a file system the batch jobs see; made 0700
    scratch = "/data/frazil/scratch"  # pilots' task directories (default: $FRAZIL_HOME/scratch)
    cache = "/data/frazil/cache"    # pilots' download cache (optional)

No default lies in a shared directory such as ``/tmp``: a pilot's passkey file lives in its
task directory, and another user of a shared directory could plant links there.

``example.toml`` beside this module (``frazil site --example-config``, and
``examples/site.toml``) shows every key with its meaning and default.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from frazil.config import frazil_home
from frazil.errors import SettingsError
from frazil.wire import Slot


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Queue(_Section):
    plugin: str = "local"
    max_queued: int = Field(8, ge=1, le=100_000)
    claim_batch: int = Field(8, ge=1, le=10_000)
    submit_rate: int = Field(50, ge=1)
    poll_interval: float = Field(5.0, gt=0)
    heartbeat: float = Field(60.0, gt=0)
    pilot: str = Field("single", pattern="^(single|multi)$")
    pilot_idle: float = Field(60.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
    extra: list[str] = Field(default_factory=list, description="extra batch directives")


class Storage(_Section):
    scratch: Path = Field(default_factory=lambda: frazil_home() / "scratch")
    cache: Path | None = None

    @field_validator("scratch", "cache")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()


class SiteConfig(_Section):
    """Everything a site daemon needs."""

    name: str
    server: str
    token: str | None = None
    token_file: Path | None = None
    queue: Queue = Field(default_factory=Queue)
    #: what one slot offers (the wire format's ``Slot``; attributes go in ``[attributes]``)
    resources: Slot = Field(default_factory=Slot)
    attributes: dict[str, Any] = Field(default_factory=dict)
    system: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    storage: Storage = Field(default_factory=Storage)

    @field_validator("server")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"server must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("resources")
    @classmethod
    def _no_attributes(cls, value: Slot) -> Slot:
        if value.attributes:
            raise ValueError("a slot's attributes go in the [attributes] table, not [resources]")
        return value

    def slot(self) -> Slot:
        """What one slot of the site offers, attributes included."""
        return replace(self.resources, attributes=self.attributes)

    def api_token(self) -> str:
        """The site's token, from ``token`` or ``token_file``."""
        if self.token:
            return self.token
        if self.token_file is not None:
            try:
                return self.token_file.expanduser().read_text().strip()
            except OSError as exc:
                raise SettingsError(f"cannot read token_file {self.token_file}: {exc}") from exc
        raise SettingsError("the site config needs 'token' or 'token_file'")


def load_site_config(path: str | Path) -> SiteConfig:
    """Read and check a ``site.toml``; ``SettingsError`` names the file and every problem."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{p}: {exc}") from exc
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise SettingsError(f"{p}: {problems}") from exc


def example_config() -> str:
    """The sample ``site.toml`` shipped in the package, every key commented."""
    return resources.files("frazil.site").joinpath("example.toml").read_text(encoding="utf-8")
