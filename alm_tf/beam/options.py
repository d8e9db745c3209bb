"""Beam pipeline options as the binaries take them, and the local runner rule.

Beam's own options follow `--` on the command line (`-- --runner=DirectRunner
--direct_num_workers=2 --direct_running_mode=multi_processing`, or
`--runner=DataflowRunner --project=... --temp_location=gs://...`).

The local runner: Beam's `DirectRunner` (its `SwitchingDirectRunner`)
hands most batch pipelines to the Prism runner first, a Go binary that
Beam downloads from GitHub at run time when it is not cached, and falls
back only after that attempt. Runs here must work offline, so a local
run (`DirectRunner`, or no runner named) runs on Beam's Python
`FnApiRunner` directly, the runner the DirectRunner itself falls back to,
with the same `direct_num_workers` / `direct_running_mode` options: no
Prism, no download. Every other runner is passed to Beam as named.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

EXTRA = "beam"
INSTALL_HINT = f"pip install 'alm-tf[{EXTRA}]'"
#: Runner names a local run takes (case-insensitive, with or without "Runner").
LOCAL_RUNNERS = ("directrunner", "direct", "switchingdirectrunner")
#: The runner names Beam knows besides the local ones (DataflowRunner, FlinkRunner, ...).
_KNOWN = ("dataflowrunner", "flinkrunner", "sparkrunner", "portablerunner", "prismrunner",
          "fnapirunner", "bundlebaseddirectrunner", "interactiverunner", "kafkastreamsrunner")

_LOCAL_LOG_LEVEL = "ERROR"

__all__ = ["EXTRA", "INSTALL_HINT", "BeamError", "pipeline", "pipeline_options", "quiet_logs", "require_beam"]


class BeamError(ValueError):
    """Bad pipeline options, or Beam missing; the message is one line."""


def require_beam() -> None:
    """BeamError naming the extra when apache-beam is not installed."""
    if importlib.util.find_spec("apache_beam") is None:
        raise BeamError(f"Apache Beam is not installed: {INSTALL_HINT}")


def _runner_name(runner: Any) -> str:
    name = (runner or "DirectRunner") if isinstance(runner, str) or runner is None else type(runner).__name__
    return name.lower()


def pipeline_options(args: Sequence[str]):
    """`args` (Beam's options) as PipelineOptions; BeamError for an unknown runner or option.

    An unknown option is refused (Beam itself would ignore a misspelt one).
    """
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(list(args))
    unknown = options.get_all_options(retain_unknown_options=True)
    known = options.get_all_options()
    stray = sorted(k for k in unknown if k not in known)
    if stray:
        raise BeamError(f"unknown Beam pipeline option --{stray[0]} (after --)")
    runner = options.view_as(StandardOptions).runner
    name = _runner_name(runner)
    if "." not in name and name not in LOCAL_RUNNERS and name not in _KNOWN \
            and name + "runner" not in _KNOWN + LOCAL_RUNNERS:
        raise BeamError(f"unknown Beam runner --runner={runner} (DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner, PortableRunner, ...)")
    if is_local(options) and "default_sdk_harness_log_level" not in " ".join(args):
        # The local workers log every bundle at INFO on the launcher's stderr.
        options = PipelineOptions([*args, f"--default_sdk_harness_log_level={_LOCAL_LOG_LEVEL}"])
    return options


def quiet_logs() -> None:
    """Beam's own INFO lines (job service, worker start-up) off a command's stderr."""
    import logging

    logging.getLogger("apache_beam").setLevel(logging.WARNING)


def is_local(options) -> bool:
    from apache_beam.options.pipeline_options import StandardOptions

    name = _runner_name(options.view_as(StandardOptions).runner)
    return name in LOCAL_RUNNERS or name + "runner" in LOCAL_RUNNERS


def _local_runner(options):
    """Beam's Python FnApiRunner set up as the DirectRunner sets it up (no Prism)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def pipeline(options):
    """A `beam.Pipeline` for `options`, on the offline local runner for a local run."""
    import apache_beam as beam

    if is_local(options):
        return beam.Pipeline(runner=_local_runner(options), options=options)
    return beam.Pipeline(options=options)
