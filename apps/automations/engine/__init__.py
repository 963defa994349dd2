"""
The workflow engine, one module per concern:

- `opening`: the engine's outbox consumer — an event opens one run per listening workflow (or records
  why it skipped), executes the admitted runs and records the engine's receipt;
- `execution`: walking a claimed run — step rows, actions through the ActionEffect ledger, parking on waits;
- `claims`: claiming a run (attempts counted on the row), back-off, retry or dead on transient failures
  (an action's, or the database's: lost connection, deadlock, serialization failure);
- `waits`: when a wait ends; `sweeps`: the periodic retry of due runs and resume of due waits;
- `trace`: the dry run of a definition for one customer (writes nothing);
- `walker`: the one step walker that execution, the trace and bulk runs share;
- `context`: what steps read (evaluation context, condition values, dynamic parameters).

The names below are the engine's interface to the rest of the app (tasks, services, bulk runs, builder).
"""

from .claims import backoff
from .context import context_build, params_render
from .execution import run_execute
from .opening import domain_event_process, domain_events_drain, domain_events_process_batch
from .sweeps import runs_resume_due, runs_retry_due
from .trace import trace_run
from .waits import wait_until
from .walker import StepVisitor, Wait, steps_walk

__all__ = [
    "StepVisitor",
    "Wait",
    "backoff",
    "context_build",
    "domain_event_process",
    "domain_events_drain",
    "domain_events_process_batch",
    "params_render",
    "run_execute",
    "runs_resume_due",
    "runs_retry_due",
    "steps_walk",
    "trace_run",
    "wait_until",
]
