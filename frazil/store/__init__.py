"""Persistence: the schema, the database engines and the migrations."""

from frazil.errors import StoreError
from frazil.store.db import Database

__all__ = ["Database", "StoreError"]
