"""positions: room on each page for updated versions (PostgreSQL)

Every batch rewrites the positions it touched. With full pages PostgreSQL
cannot keep the new version on the same page (a HOT update), so each update
adds index entries and a dead row that only VACUUM removes; where autovacuum
is off or behind, the table bloated to fifteen versions a row by 300,000
events and posting slowed by half by 1,000,000. Pages half empty let updates
stay on their page, where later reads prune the dead versions without
VACUUM. SQLite updates in place and needs nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE positions SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE positions RESET (fillfactor)")
