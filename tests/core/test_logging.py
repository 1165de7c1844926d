"""Log lines off a terminal are JSON, whatever the message holds."""

from __future__ import annotations

import json
import logging

from core.cli import JsonFormatter


def test_json_log_lines_parse_with_quotes_newlines_and_tracebacks() -> None:
    fmt = JsonFormatter()
    message = "can't open 'store' \"x\"\nsecond line é \ud800"
    record = logging.LogRecord("litrag.t", logging.ERROR, __file__, 1, "%s", (message,), None)
    line = fmt.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == message and entry["level"] == "ERROR"
    assert entry["logger"] == "litrag.t"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "litrag.t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    entry = json.loads(fmt.format(record))
    assert "ValueError: boom" in entry["exception"]
