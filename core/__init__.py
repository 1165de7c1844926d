"""Shared core of litrag: configuration, schemas, ids, chunking, embedding and the Qdrant store.

Nothing in here imports ``ingest``, ``service`` or ``eval``.
"""
