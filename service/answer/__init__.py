"""Answer generation (extractive or LLM) and citation verification."""
