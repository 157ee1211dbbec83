"""`python -m salesman_utils.report --profile tutorial`: regenerate the README blocks and
docs/RESULTS.md from the saved results (`pages.main`)."""

from salesman_utils.report.pages import main

raise SystemExit(main())
