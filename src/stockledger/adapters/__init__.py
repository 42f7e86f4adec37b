"""Adapters: the database (SQLAlchemy Core + Alembic) and the input/output formats
(pydantic request models, JSON rendering). Everything that talks to the
outside world lives here; the domain never imports it."""
