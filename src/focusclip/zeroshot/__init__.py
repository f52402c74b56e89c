"""Zero-shot evaluation: benchmark loaders, the task registry (JSON), batched evaluation and reports."""

from focusclip.zeroshot.datasets import DATASETS, LoadedSet, Sample, load_dataset
from focusclip.zeroshot.evaluate import evaluate, evaluate_task, model_fingerprint, read_results
from focusclip.zeroshot.metrics import headline, task_metrics
from focusclip.zeroshot.report import markdown_table, plot_confusion
from focusclip.zeroshot.tasks import Task, load_registry, resolve_tasks

__all__ = ["DATASETS", "LoadedSet", "Sample", "Task", "evaluate", "evaluate_task", "headline",
           "load_dataset", "load_registry", "markdown_table", "model_fingerprint", "plot_confusion",
           "read_results", "resolve_tasks", "task_metrics"]
