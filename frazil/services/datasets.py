"""Finding a dataset by what people call it, and reading the config it runs.

``find_dataset`` takes an id or an alias (aliases compare exactly, on every backend);
``config_of`` reads a stored config version, parsed once per process and kept by the hash of
its text (a bounded cache: the text of a large config is not even fetched again).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from sqlalchemy import Connection, bindparam, select

from frazil.errors import NotFound
from frazil.model.spec import DatasetConfig
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, dataset_config


def find_dataset(conn: Connection, ref: int | str) -> int:
    """A dataset's id from its id or alias; ``NotFound`` otherwise."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit()):
        row = conn.execute(select(dataset.c.id).where(dataset.c.id == int(ref))).first()
    else:
        row = conn.execute(
            select(dataset.c.id, dataset.c.alias).where(dataset.c.alias == ref)
        ).first()
        if row is not None and row.alias != ref:  # MariaDB's collation: "SIM " equals "sim"
            row = None
    if row is None:
        raise NotFound(f"no dataset {ref!r}")
    return int(row.id)


_parsed: OrderedDict[str, DatasetConfig] = OrderedDict()
_parsed_lock = threading.Lock()
_PARSED_MAX = 32


def config_of(conn: Connection, dataset_id: int, version: int) -> DatasetConfig:
    """Version ``version`` of a dataset's config (its text read and parsed only once per
    process: a large config's text is not even fetched again)."""
    return config_and_uploads(conn, dataset_id, version)[0]


def config_and_uploads(
    conn: Connection, dataset_id: int, version: int
) -> tuple[DatasetConfig, dict[str, str]]:
    """``config_of``, and the files uploaded with that version ({relative path: sha256};
    see ``frazil.model.uploads``), read with it in one statement."""
    key = {"p_dataset": dataset_id, "p_version": version}
    hash_stmt = prepared(
        "config_hash_uploads",
        lambda: select(dataset_config.c.hash, dataset_config.c.uploads).where(
            dataset_config.c.dataset_id == bindparam("p_dataset"),
            dataset_config.c.version == bindparam("p_version"),
        ),
    )
    text_hash, uploaded = conn.execute(hash_stmt, key).one()
    uploads: dict[str, str] = json.loads(uploaded) if uploaded else {}
    with _parsed_lock:
        config = _parsed.get(text_hash)
        if config is not None:
            _parsed.move_to_end(text_hash)
            return config, uploads
    text_stmt = prepared(
        "config_text",
        lambda: select(dataset_config.c.config).where(
            dataset_config.c.dataset_id == bindparam("p_dataset"),
            dataset_config.c.version == bindparam("p_version"),
        ),
    )
    config = DatasetConfig.model_validate_json(conn.execute(text_stmt, key).scalar_one())
    with _parsed_lock:
        _parsed[text_hash] = config
        while len(_parsed) > _PARSED_MAX:
            _parsed.popitem(last=False)
    return config, uploads
