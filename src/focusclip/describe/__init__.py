"""Pose descriptions: the paper's single-shot LLM prompt, an OpenAI-compatible client with resume, an
offline rule-based describer and description statistics. See docs/describe.md."""

from focusclip.describe.backend import Describer, Outcome
from focusclip.describe.client import OpenAIDescriber, RetryPolicy
from focusclip.describe.job import FileJob, create_describer, describe_file
from focusclip.describe.prompt import PROMPT_VERSION, SYSTEM_PROMPT, annotation_payload, build_messages
from focusclip.describe.results import merge_captions, read_descriptions
from focusclip.describe.rules import RULES_VERSION, RulesDescriber, describe_record
from focusclip.describe.run import RunSummary, describe_records
from focusclip.describe.stats import collect_descriptions, description_stats, format_description_stats

__all__ = [
    "PROMPT_VERSION",
    "RULES_VERSION",
    "SYSTEM_PROMPT",
    "Describer",
    "FileJob",
    "OpenAIDescriber",
    "Outcome",
    "RetryPolicy",
    "RulesDescriber",
    "RunSummary",
    "annotation_payload",
    "build_messages",
    "create_describer",
    "describe_file",
    "describe_record",
    "describe_records",
    "description_stats",
    "collect_descriptions",
    "format_description_stats",
    "merge_captions",
    "read_descriptions",
]
