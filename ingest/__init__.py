"""Bulk ingestion: discover inputs, parse them into Documents, chunk, embed and upsert."""
