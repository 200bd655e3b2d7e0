"""The storage stage: the embedded engine, the indexer (monthly indices, spool,
durability), queries, relabelling, export rows, retention and erasure.
"""
