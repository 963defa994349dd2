"""
State tags: "customers who match this condition carry this tag", kept true as customers change and as time
passes. A state tag is a workflow whose trigger is `customer.state_tag` (see `definitions.py`):

- `spec`: what an active state tag says (condition, tag, exclusive group and rank), which events can change
  its answer (the catalog's `changed_by`) and which parts of it move with the clock;
- `apply`: the one rule "carriers = matchers", for one customer (real time, from the engine's outbox
  consumer) and set-based for many (the time pass, a full recomputation when a state tag is activated);
  within an exclusive group the highest matching rank wins and the switch happens in one transaction;
- `timepass`: the scheduled pass that re-evaluates only the customers whose answer can have changed since
  the last pass (an order leaving a window, a relative date passing), never every customer;
- `runs`: the workflow's "entered" (`steps`) and "left" (`left`) actions, run through the engine's normal
  run machinery when the state tag adds or removes its tag.
"""

from .apply import Changes, customer_reevaluate, state_tags_recompute, unit_recompute
from .runs import transition_run_open
from .spec import (
    StateSpec,
    state_units,
    state_workflows_active,
    triggers_listened,
)
from .timepass import time_pass

__all__ = [
    "Changes",
    "StateSpec",
    "customer_reevaluate",
    "state_tags_recompute",
    "state_units",
    "state_workflows_active",
    "time_pass",
    "transition_run_open",
    "triggers_listened",
    "unit_recompute",
]
