"""Database adapter: SQLModel tables, engine set-up and transactions."""
