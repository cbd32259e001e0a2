"""Frazil: a lightweight distributed production system for scientific datasets."""

__version__ = "0.1.0"
