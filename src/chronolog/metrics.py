"""Prometheus metrics of a chronolog scheduler (needs ``pip install 'chronolog[metrics]'``).

`SchedulerCollector` registers in any ``prometheus_client`` registry and
follows a running `chronolog.Scheduler`; `serve_metrics` serves a registry
over HTTP in Trio. ``chronolog run --metrics HOST:PORT`` uses both. See
``docs/how-to/monitor-with-prometheus.md`` and
``docs/reference/metrics.md``.
"""

from ._metrics import SchedulerCollector as SchedulerCollector
from ._metrics import serve_metrics as serve_metrics

__all__ = ["SchedulerCollector", "serve_metrics"]
