"""Zero-shot evaluation: benchmark loaders, the task registry (JSON), batched evaluation and reports."""

from focusclip.zeroshot.classifier import build_zero_shot_classifier
from focusclip.zeroshot.datasets import DATASETS, LoadedSet, Sample, load_benchmark
from focusclip.zeroshot.evaluate import evaluate, evaluate_task, model_fingerprint, read_eval_results
from focusclip.zeroshot.metrics import headline, task_metrics
from focusclip.zeroshot.report import markdown_table, plot_confusion
from focusclip.zeroshot.tasks import Task, load_registry, resolve_tasks

__all__ = ["DATASETS", "LoadedSet", "Sample", "Task", "build_zero_shot_classifier", "evaluate", "evaluate_task",
           "headline", "load_benchmark", "load_registry", "markdown_table", "model_fingerprint", "plot_confusion",
           "read_eval_results", "resolve_tasks", "task_metrics"]
