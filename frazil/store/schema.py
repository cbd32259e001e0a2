"""The production database's tables (SQLAlchemy Core), the same on SQLite, PostgreSQL, MariaDB.

Three groups, as in the database of "The IceProd Framework" (§3.6):

- the dataset and its config: ``dataset``, ``dataset_config`` (every version, whole), and the
  searchable parts of each version as rows: ``config_parameter`` (steering, task, tray and
  module parameters and module args), ``software_env`` (name + version), ``config_tray``,
  ``config_module``; ``task_dependency`` holds the DAG that every job of the dataset shares;
- the work: ``job`` (keyed by dataset and index), ``task``, ``task_attempt`` (one row per try),
  ``file``, ``task_stat``, ``run``;
- the audit trail: ``event``;
- people: ``account`` (users, their role and password hash), ``user_group`` and
  ``group_member`` (who may write to a group's datasets);
- the service itself: ``token`` (hashes of API tokens), ``quota`` (per-submitter caps),
  ``site``, ``pilot`` (multi-task pilots), ``task_log``.

Times are UTC seconds since the epoch (``now`` is passed in by the caller). Job and dataset
rows carry counters of their children's states, kept in the same transactions as the
changes, so that no state change has to count a whole job or dataset.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import VARCHAR

#: 64-bit ids; on SQLite a plain INTEGER PRIMARY KEY is the fast rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAME = 255
STATUS = 20

#: Names (sites, aliases, tasks, logs, tokens, ...) compare exactly on every backend:
#: MariaDB's default collation folds case (``SITE-A`` would be ``site-a``), so their columns
#: use its binary one, as SQLite and PostgreSQL compare by default.
Name = String(NAME).with_variant(VARCHAR(NAME, collation="utf8mb4_bin"), "mysql", "mariadb")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

dataset = Table(
    "dataset",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alias", Name, unique=True, nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("owner", Name, nullable=False, default=""),
    Column("group_name", Name, nullable=False, default=""),
    # seen only by its owner, its group and administrators
    Column("private", Boolean, nullable=False, default=False),
    Column("status", String(STATUS), nullable=False),
    Column("priority", Double, nullable=False, default=1.0),
    Column("debug", Boolean, nullable=False, default=False),
    Column("truncated", Boolean, nullable=False, default=False),
    Column("always_active", Boolean, nullable=False, default=False),
    Column("seed", BigInteger, nullable=False, default=0),
    Column("jobs_submitted", Integer, nullable=False, default=0),
    Column("jobs_materialized", Integer, nullable=False, default=0),
    Column("jobs_complete", Integer, nullable=False, default=0),
    Column("jobs_failed", Integer, nullable=False, default=0),
    Column("tasks_per_job", Integer, nullable=False),
    Column("config_version", Integer, nullable=False, default=1),
    # the retry policy, from the config's options at submission
    Column("max_failures", Integer, nullable=False),
    Column("queued_timeout", Double, nullable=False),
    Column("processing_timeout", Double, nullable=False),
    Column("heartbeat_timeout", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

dataset_config = Table(
    "dataset_config",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("dataset.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("config", Text, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", Double, nullable=False),
    # who stored the version, as the audit trail names callers (``user:alice``)
    Column("created_by", Name, nullable=False, default="", server_default=""),
    # the files its submitter uploaded with it, {relative path: sha256} as JSON (or none)
    Column("uploads", Text, nullable=True),
    UniqueConstraint("dataset_id", "version"),
)

software_env = Table(
    "software_env",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Name, nullable=False),
    Column("version", Name, nullable=False),
    UniqueConstraint("name", "version"),
)

config_tray = Table(
    "config_tray",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config_id", Integer, ForeignKey("dataset_config.id"), nullable=False, index=True),
    Column("task_index", Integer, nullable=False),
    Column("task_name", Name, nullable=False),
    Column("tray_index", Integer, nullable=False),
    Column("name", Name, nullable=False),
    Column("iterations", Name, nullable=False),
    Column("env_id", Integer, ForeignKey("software_env.id"), nullable=True, index=True),
)

config_module = Table(
    "config_module",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tray_id", Integer, ForeignKey("config_tray.id"), nullable=False, index=True),
    Column("module_index", Integer, nullable=False),
    Column("name", Name, nullable=False, index=True),
    Column("src", Text, nullable=False),
    Column("class_name", Name, nullable=False),
    Column("url", Text, nullable=False),
)

config_parameter = Table(
    "config_parameter",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("config_id", Integer, ForeignKey("dataset_config.id"), nullable=False, index=True),
    # steering | task | tray | module; for module and tray rows, the owner's id
    Column("scope", String(STATUS), nullable=False),
    Column("tray_id", Integer, ForeignKey("config_tray.id"), nullable=True),
    Column("module_id", Integer, ForeignKey("config_module.id"), nullable=True, index=True),
    Column("task_name", Name, nullable=True),
    # parameter | arg
    Column("kind", String(STATUS), nullable=False),
    Column("name", Name, nullable=False),
    Column("value_json", Text, nullable=False),
    Column("value_text", Name, nullable=False),
    Index(None, "name", "value_text"),
)

task_dependency = Table(
    "task_dependency",
    metadata,
    Column("dataset_id", Integer, ForeignKey("dataset.id"), primary_key=True),
    Column("task_index", Integer, primary_key=True),
    Column("depends_on", Integer, primary_key=True),
)

job = Table(
    "job",
    metadata,
    Column("dataset_id", Integer, ForeignKey("dataset.id"), primary_key=True),
    Column("job_index", Integer, primary_key=True),
    Column("status", String(STATUS), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("n_tasks", Integer, nullable=False),
    Column("n_complete", Integer, nullable=False, default=0),
    Column("n_failed", Integer, nullable=False, default=0),
    Column("n_suspended", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("status_changed", Double, nullable=False),
    Index(None, "dataset_id", "status"),
)

task = Table(
    "task",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, nullable=False),
    Column("job_index", Integer, nullable=False),
    Column("task_index", Integer, nullable=False),
    Column("name", Name, nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("deps_pending", Integer, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    # requirements after expression evaluation
    Column("cpu", Integer, nullable=False),
    Column("gpu", Integer, nullable=False),
    Column("memory", Double, nullable=False),
    Column("disk", Double, nullable=False),
    Column("time", Double, nullable=False),
    Column("os", Name, nullable=True),  # "|a|b|" when set
    Column("site_req", Name, nullable=True),  # "|a|b|" when set
    Column("req_extra", Text, nullable=True),  # JSON of site attributes
    Column("site", Name, nullable=True),  # where the current attempt runs
    # batch-side DAGs: the site that holds the task's whole job, and the hash of the key
    # with which the task's own pilot may claim it once its dependencies are complete
    Column("reserved_for", Name, nullable=True),
    Column("reservation_hash", String(64), nullable=True),
    # the site where it last failed, while another live site fits it: claims there wait
    Column("avoid_site", Name, nullable=True),
    Column("phase", String(STATUS), nullable=True),
    Column("heartbeat_at", Double, nullable=True),
    Column("status_changed", Double, nullable=False),
    Column("config_version", Integer, nullable=False),
    ForeignKeyConstraint(["dataset_id", "job_index"], ["job.dataset_id", "job.job_index"]),
    UniqueConstraint("dataset_id", "job_index", "task_index"),
    Index(None, "dataset_id", "status", "job_index", "task_index"),
)

task_attempt = Table(
    "task_attempt",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger, ForeignKey("task.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("passkey_hash", String(64), nullable=False),
    Column("site", Name, nullable=False),
    Column("host", Name, nullable=True),
    Column("batch_id", Name, nullable=True),
    Column("phase", String(STATUS), nullable=True),
    # open | complete | failed | reset | timeout | cancelled
    Column("outcome", String(STATUS), nullable=False),
    Column("claimed_at", Double, nullable=False),
    Column("started_at", Double, nullable=True),
    Column("ended_at", Double, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("cpu_time", Double, nullable=True),
    Column("wall_time", Double, nullable=True),
    Column("max_memory", Double, nullable=True),  # GB
    Column("max_disk", Double, nullable=True),  # GB
    Column("error", Text, nullable=True),
    Column("spec", Text, nullable=True),  # the resolved task spec as it ran (JSON)
    Column("config_version", Integer, nullable=False),
    # the multi-task pilot that ran it (None: a pilot of its own, started by the site)
    Column("pilot_id", BigInteger, nullable=True),
    # sha256 of the request id of the claim or exchange that handed it out: a repeated
    # request (its answer was lost) gets the same attempts back
    Column("request_hash", String(64), nullable=True, index=True),
    UniqueConstraint("task_id", "number"),
    Index(None, "pilot_id", "outcome"),  # a pilot's open attempts (each exchange sums them)
)

file = Table(
    "file",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("dataset.id"), nullable=False),
    Column("task_id", BigInteger, ForeignKey("task.id"), nullable=True, index=True),
    Column("attempt_id", BigInteger, ForeignKey("task_attempt.id"), nullable=True),
    Column("url", Text, nullable=False),
    Column("local", Name, nullable=False, default=""),
    Column("size", BigInteger, nullable=True),
    Column("checksum_type", String(STATUS), nullable=True),
    Column("checksum", String(128), nullable=True),
    Column("movement", String(STATUS), nullable=False),
    Column("type", String(STATUS), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("deleted_at", Double, nullable=True),  # temporary files the collector removed
    Column("refused", Text, nullable=True),  # why the collector would not delete it
    Index(None, "dataset_id", "movement"),
)

task_stat = Table(
    "task_stat",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("attempt_id", BigInteger, ForeignKey("task_attempt.id"), nullable=False, index=True),
    Column("dataset_id", Integer, nullable=False),
    Column("task_name", Name, nullable=False),
    Column("name", Name, nullable=False),
    Column("value", Double, nullable=False),
    Index(None, "dataset_id", "name", "task_name"),  # the stats page, paged by name
)

run = Table(
    "run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("dataset.id"), nullable=False),
    Column("run_number", BigInteger, nullable=False),
    Column("date", String(32), nullable=False),
    Column("files", Text, nullable=False, default="[]"),
    UniqueConstraint("dataset_id", "run_number"),
)

event = Table(
    "event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time", Double, nullable=False),
    Column("actor", Name, nullable=False),  # user:NAME, site:NAME, daemon:NAME, pilot
    Column("dataset_id", Integer, nullable=True),
    Column("object_type", String(STATUS), nullable=False),  # dataset | job | task
    Column("object_id", Name, nullable=False),
    Column("action", Name, nullable=False),
    Column("old_status", String(STATUS), nullable=True),
    Column("new_status", String(STATUS), nullable=True),
    Column("count", Integer, nullable=False, default=1),  # objects changed by one action
    Column("reason", Text, nullable=False, default=""),
    Index(None, "dataset_id", "time"),
)

#: A person who logs in: a local password (argon2 hash), or a directory or single sign-on
#: login (no password here). A disabled account's tokens stop working.
account = Table(
    "account",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Name, nullable=False, unique=True),
    Column("role", String(STATUS), nullable=False),  # admin | user | readonly
    Column("password", String(200), nullable=True),  # argon2 hash (about 100 characters)
    Column("source", String(STATUS), nullable=False, default="local"),  # local | ldap | oidc
    Column("email", Name, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("disabled_at", Double, nullable=True),
)

#: A group of users: a dataset's group members with ``may_write`` control it.
user_group = Table(
    "user_group",
    metadata,
    Column("name", Name, primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Double, nullable=False),
)

group_member = Table(
    "group_member",
    metadata,
    Column("group_name", Name, ForeignKey("user_group.name"), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id"), primary_key=True, index=True),
    Column("may_write", Boolean, nullable=False, default=False),
)

token = Table(
    "token",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Name, nullable=False),
    Column("role", String(STATUS), nullable=False),  # admin | user | readonly | site
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    # a person's token acts as its account (its role, its groups); a site's has none
    Column("account_id", Integer, ForeignKey("account.id"), nullable=True, index=True),
    Column("scope", String(STATUS), nullable=True),  # read | write | admin (None: the role's)
    Column("expires_at", Double, nullable=True),
)

#: Per-submitter caps that an administrator set; a null column keeps the default of
#: ``[quota]`` in ``frazil.toml``.
quota = Table(
    "quota",
    metadata,
    Column("submitter", Name, primary_key=True),  # a dataset's owner
    Column("dataset_jobs", BigInteger, nullable=True),
    Column("dataset_tasks", BigInteger, nullable=True),
    Column("jobs", BigInteger, nullable=True),
    Column("tasks", BigInteger, nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("updated_by", Name, nullable=False),
)

site = Table(
    "site",
    metadata,
    Column("name", Name, primary_key=True),
    Column("resources", Text, nullable=False),  # JSON: what one of its slots offers
    Column("registered_at", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("info", Text, nullable=False, default="{}"),  # JSON: plugin, version, host
)

pilot = Table(
    "pilot",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site", Name, nullable=False, index=True),
    Column("key_hash", String(64), nullable=False),
    # what the pilot's batch job holds: the tasks it runs at once share these
    Column("cpu", Integer, nullable=False),
    Column("gpu", Integer, nullable=False),
    Column("memory", Double, nullable=False),  # GB
    Column("disk", Double, nullable=False),  # GB
    Column("time", Double, nullable=False),  # hours
    Column("os", Name, nullable=True),
    Column("attributes", Text, nullable=True),  # JSON
    Column("batch_id", Name, nullable=True),
    Column("host", Name, nullable=True),
    Column("state", String(STATUS), nullable=False),  # open | ended
    Column("created_at", Double, nullable=False),
    Column("seen_at", Double, nullable=True),
    Column("ended_at", Double, nullable=True),
    Column("reason", Text, nullable=True),  # why it ended
    Column("tasks", Integer, nullable=False, default=0),  # tasks handed to it
)

task_log = Table(
    "task_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("attempt_id", BigInteger, ForeignKey("task_attempt.id"), nullable=False),
    Column("task_id", BigInteger, nullable=False, index=True),
    Column("name", Name, nullable=False),  # stdout | stderr | pilot | a module's
    # the last 64 KiB (the web and earlier clients read it); the whole log is the file
    Column("text", Text, nullable=False),
    Column("size", BigInteger, nullable=False),  # bytes of the whole log
    Column("created_at", Double, nullable=False),
    # the log's file under [server] log_dir (None: a log kept before files, ``text`` alone)
    Column("path", Name, nullable=True),
    UniqueConstraint("attempt_id", "name"),
)
