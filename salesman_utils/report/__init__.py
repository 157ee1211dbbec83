"""The report: what a run found, from its saved tables and metrics, never typed numbers.

- `results`: write and read a notebook's metrics JSON and tables;
- `tables`: effect sizes, verdicts and the results tables; `pages`: the README blocks and
  docs/RESULTS.md (`python -m salesman_utils.report --profile tutorial`);
- `findings` and `sentences`: the generated sentences; `plots`: the figures.

Imports: anything. Nothing imports it except notebooks and the runner's checks.
"""
