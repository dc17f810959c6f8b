"""The sentinel: declared anomaly rules compiled to incremental SQL, with an alert lifecycle in PostgreSQL."""
