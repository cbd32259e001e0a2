"""The use cases: the only code that changes the production database."""
