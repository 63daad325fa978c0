"""Every component id of the app, in one place (all-in-one components build theirs here too)."""

from __future__ import annotations

from typing import Any

# shell
URL = "url"
NAV_USER = "nav-user"

# jobs page
JOBS_GRID = "jobs-grid"
JOBS_CURSORS = "jobs-cursors"
JOBS_BLOCK = "jobs-block"
JOBS_LIVE = "jobs-live"
JOBS_INTERVAL = "jobs-interval"
JOBS_ERROR = "jobs-error"
JOBS_COMPARE = "jobs-compare"
JOBS_REFRESH = "jobs-refresh"

# job page
JOB_ID = "job-id"
JOB_SEEN = "job-seen"
JOB_INTERVAL = "job-interval"
JOB_STATUS = "job-status"
JOB_SUMMARY = "job-summary"
JOB_TIMELINE = "job-timeline"
JOB_LOGS = "job-logs"
JOB_METRICS = "job-metrics"
JOB_TABLES = "job-tables"
JOB_CHARTS = "job-charts"
JOB_ARTIFACTS = "job-artifacts"
JOB_CANCEL = "job-cancel"
JOB_RERUN = "job-rerun"
JOB_MESSAGE = "job-message"

# scripts
SCRIPTS_GRID = "scripts-grid"
SCRIPT_NAME = "script-name"
SCRIPT_VERSION = "script-version"
SCRIPT_FORM = "script-form"
SCRIPT_SUBMIT = "script-submit"
SCRIPT_SWEEP = "script-sweep"
SCRIPT_REPEATS = "script-repeats"
SCRIPT_REUSE = "script-reuse"
SCRIPT_MESSAGE = "script-message"
SCRIPT_MANIFEST = "script-manifest"
SCRIPT_MEMORY = "script-memory"
SCRIPT_CPUS = "script-cpus"
SCRIPT_TIMEOUT = "script-timeout"

# datasets
DATASETS_GRID = "datasets-grid"
DATASET_UPLOAD = "dataset-upload"
DATASET_UPLOAD_NAME = "dataset-upload-name"
DATASET_MESSAGE = "dataset-message"
DATASET_VERSION = "dataset-version"
DATASET_DETAIL = "dataset-detail"
DATASET_SHOWN = "dataset-shown"

# compare
COMPARE_DATA = "compare-data"
COMPARE_GRID = "compare-grid"
COMPARE_EXPORT = "compare-export"
COMPARE_X = "compare-x"
COMPARE_METRIC = "compare-metric"
COMPARE_SCATTER = "compare-scatter"
COMPARE_BOX = "compare-box"
COMPARE_PARALLEL = "compare-parallel"
COMPARE_MESSAGE = "compare-message"
COMPARE_INTERVAL = "compare-interval"
COMPARE_SOURCE = "compare-source"
COMPARE_SWEEPS_GRID = "compare-sweeps-grid"

# agents
AGENTS_GRID = "agents-grid"
AGENTS_INTERVAL = "agents-interval"
AGENTS_DRAIN = "agents-drain"
AGENTS_MESSAGE = "agents-message"

# schedules
SCHEDULES_GRID = "schedules-grid"
SCHEDULES_INTERVAL = "schedules-interval"
SCHEDULES_PAUSE = "schedules-pause"
SCHEDULES_RESUME = "schedules-resume"
SCHEDULES_MESSAGE = "schedules-message"
SCHEDULES_RUNS = "schedules-runs"


def param_form(subcomponent: str, aio_id: Any, name: Any = "") -> dict[str, Any]:
    """Pattern-matching id of a part of a ParamFormAIO (one per param or input)."""
    return {
        "component": "ParamFormAIO",
        "subcomponent": subcomponent,
        "aio_id": aio_id,
        "name": name,
    }


def result_table(subcomponent: str, aio_id: Any) -> dict[str, Any]:
    """Pattern-matching id of a part of a ResultTableAIO."""
    return {"component": "ResultTableAIO", "subcomponent": subcomponent, "aio_id": aio_id}


JOB_INPUTS_GRID = "job-inputs-grid"
JOB_TIMELINE_GRID = "job-timeline-grid"
SCRIPT_VERSIONS_GRID = "script-versions-grid"
DATASET_VERSIONS_GRID = "dataset-versions-grid"
DATASET_PREVIEW_GRID = "dataset-preview-grid"
DATASET_LINEAGE_GRID = "dataset-lineage-grid"


def job_chart(index: int) -> dict[str, Any]:
    return {"type": "job-chart", "index": index}


# webhooks
WEBHOOKS_GRID = "webhooks-grid"
WEBHOOKS_INTERVAL = "webhooks-interval"
WEBHOOKS_MESSAGE = "webhooks-message"
WEBHOOK_DELIVERIES_GRID = "webhook-deliveries-grid"
WEBHOOK_DELIVERIES_TITLE = "webhook-deliveries-title"
# pipelines
PIPELINES_GRID = "pipelines-grid"
PIPELINES_INTERVAL = "pipelines-interval"
PIPELINES_REFRESH = "pipelines-refresh"
PIPELINES_ERROR = "pipelines-error"
PIPELINE_ID = "pipeline-id"
PIPELINE_SEEN = "pipeline-seen"
PIPELINE_INTERVAL = "pipeline-interval"
PIPELINE_TITLE = "pipeline-title"
PIPELINE_STATUS = "pipeline-status"
PIPELINE_SUMMARY = "pipeline-summary"
PIPELINE_GRAPH = "pipeline-graph"
PIPELINE_STEPS = "pipeline-steps"
PIPELINE_CANCEL = "pipeline-cancel"
PIPELINE_MESSAGE = "pipeline-message"
