"""The arena: where agents meet the simulated customer and the referee scores them.

- `online`: whole calls of an agent against the customer, scored by the referee;
- `callenv`: a call as a Gymnasium environment, and `planner_rl` / `planner_experiment`: the
  strategy planner trained and compared in it (notebook 02);
- `evaluation`: the offline evaluation of notebook 05 (held-out contexts, the systems' replies,
  automatic metrics, judge items).

Imports: anything but `report/`. Nothing outside `report/` imports it.
"""
