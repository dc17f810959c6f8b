"""`dynoline simulate`: one shard of a line's testers, paced in wall-clock time, streamed into PostgreSQL.

generator ─► bounded row queue ─► writer ─► binary COPY in micro-batches
                                       └──► spool file while the database is away, replayed in order
"""
