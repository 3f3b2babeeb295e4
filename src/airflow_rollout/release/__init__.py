"""What each phase of a release does: one module per phase, plain functions of a ReleaseContext.

No Airflow scheduling here: `airflow_rollout.tasks` wraps the steps as tasks. Importing this package imports no
phase: every task imports `errors` and `preflight` (its release context), and 22 of a release's 34 tasks are
checklist items that run no phase at all, so the phases (psycopg, the targets' clients) are imported by
`airflow_rollout.release.steps`, which only a step task imports, when it runs.
"""
