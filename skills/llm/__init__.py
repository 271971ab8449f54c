"""LLM access for every envgym package: one OpenAI-compatible client (:class:`LLMClient`), its config, and the
parts built on it that sit low in the import graph (the LLM data engine, skill discovery)."""

from skills.llm.client import LLMClient, LLMUsage, StructuredReply, bounded_text, parse_json_reply
from skills.llm.client_config import LLMClientConfig

__all__ = ["LLMClient", "LLMClientConfig", "LLMUsage", "StructuredReply", "bounded_text", "parse_json_reply"]
