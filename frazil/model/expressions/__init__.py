"""The ``$`` expression language that lets one dataset config serve every job.

``syntax`` parses text into templates, ``evaluate`` resolves them against a ``Context``,
``calc`` is the ``$eval`` sandbox and ``sprintf`` the bounded formatter.
"""

from frazil.model.expressions.calc import to_text
from frazil.model.expressions.evaluate import (
    FUNCTIONS,
    KEYWORDS,
    LOOKUPS,
    Context,
    Evaluator,
    evaluate,
    literal,
)
from frazil.model.expressions.syntax import Template, has_expression, parse

__all__ = [
    "FUNCTIONS",
    "KEYWORDS",
    "LOOKUPS",
    "Context",
    "Evaluator",
    "Template",
    "evaluate",
    "has_expression",
    "literal",
    "parse",
    "to_text",
]
