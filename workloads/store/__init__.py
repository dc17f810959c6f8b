"""The PostgreSQL store: connection handling, migrations, partitions and the queries others rely on."""
