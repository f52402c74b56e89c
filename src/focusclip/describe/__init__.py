"""Pose descriptions: the paper's single-shot LLM prompt, an OpenAI-compatible client with resume, an
offline rule-based describer and description statistics. See docs/describe.md."""

from focusclip.describe.backend import Describer, Outcome
from focusclip.describe.client import OpenAIDescriber, RetryPolicy
from focusclip.describe.prompt import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    annotation_payload,
    build_messages,
    count_in_words,
)
from focusclip.describe.results import load_results, merge_captions
from focusclip.describe.rules import RULES_VERSION, RulesDescriber, describe_record
from focusclip.describe.run import RunSummary, describe_records
from focusclip.describe.stats import description_stats, format_stats, load_texts

__all__ = [
    "PROMPT_VERSION",
    "RULES_VERSION",
    "SYSTEM_PROMPT",
    "Describer",
    "OpenAIDescriber",
    "Outcome",
    "RetryPolicy",
    "RulesDescriber",
    "RunSummary",
    "annotation_payload",
    "build_messages",
    "count_in_words",
    "describe_record",
    "describe_records",
    "description_stats",
    "format_stats",
    "load_results",
    "load_texts",
    "merge_captions",
]
