"""The OpenAI-compatible chat endpoint, through the official ``openai`` client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
from openai.types.chat import ChatCompletionMessageParam

from core.config import LLMSettings
from core.errors import LitragError


class LLMError(LitragError):
    """The LLM endpoint failed; ``status`` is the HTTP status the service answers with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LLMClient:
    """Chat completions with the configured base URL, model, key, timeout and retries."""

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.base_url:
            raise LitragError("no LLM endpoint configured (LITRAG_LLM__BASE_URL)")
        self.settings = settings
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def _wrap(self, exc: Exception) -> LLMError:
        where = self.settings.base_url
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(
                f"LLM endpoint {where} timed out after {self.settings.timeout_s} s", 504
            )
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"LLM endpoint {where} unreachable: {exc}", 502)
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"LLM endpoint {where} answered HTTP {exc.status_code}: {exc}", 502)
        return LLMError(f"LLM endpoint {where} failed: {exc}", 502)

    def complete(self, messages: list[ChatCompletionMessageParam]) -> str:
        """The assistant's reply text."""
        try:
            resp = self._client.chat.completions.create(
                model=self.settings.model,
                messages=messages,
                temperature=self.settings.temperature,
                max_tokens=self.settings.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise self._wrap(exc) from exc
        if not resp.choices:
            raise LLMError("LLM endpoint returned no choices", 502)
        return resp.choices[0].message.content or ""

    def stream(self, messages: list[ChatCompletionMessageParam]) -> Iterator[str]:
        """Text deltas as the model writes them."""
        try:
            stream = self._client.chat.completions.create(
                model=self.settings.model,
                messages=messages,
                temperature=self.settings.temperature,
                max_tokens=self.settings.max_tokens,
                stream=True,
            )
            for event in stream:
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except openai.OpenAIError as exc:
            raise self._wrap(exc) from exc

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()
