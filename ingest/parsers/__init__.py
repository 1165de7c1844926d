"""One parser module per input format; ``ingest.formats`` picks one by content."""
