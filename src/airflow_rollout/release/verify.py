"""Verify: the new version's checks (HTTP, latency, serving endpoints, jobs) measured and recorded, and the data fingerprinted.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from airflow_rollout.checks import CheckResult, run_http_check, run_latency_probe
from airflow_rollout.config import DatabricksJobCheck, HttpCheck, LatencyCheck, ServingEndpointCheck
from airflow_rollout.ledger import FingerprintStage
from airflow_rollout.release.errors import ChecksFailedError
from airflow_rollout.targets.databricks import run_job, serving_endpoint_ready

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


log = logging.getLogger(__name__)


CheckKinds = tuple[type[HttpCheck | LatencyCheck | ServingEndpointCheck | DatabricksJobCheck], ...]


def run_checks(ctx: ReleaseContext, kinds: CheckKinds, version: str | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    for check in ctx.profile.checks:
        if not isinstance(check, kinds):
            continue
        if isinstance(check, ServingEndpointCheck):
            result = serving_endpoint_ready(check)
        elif isinstance(check, DatabricksJobCheck):
            # One job run per check and release run: a retry or the step's run after its wait finds it again.
            token = hashlib.sha256(f"{ctx.release_id}\n{ctx.run_id}\n{check.name}".encode()).hexdigest()[:64]
            result = run_job(check, idempotency_token=token)
        elif isinstance(check, LatencyCheck):
            result = run_latency_probe(check, ctx.app_base_url(check.app))
        else:
            result = run_http_check(check, ctx.app_base_url(check.app), version or ctx.version)
        log.info("%s %s: %s", "PASS" if result.passed else "FAIL", result.name, result.detail)
        results.append(result)
    return results


def verify(ctx: ReleaseContext, kinds: CheckKinds) -> dict[str, Any]:
    results = run_checks(ctx, kinds)
    for result in results:
        ctx.ledger.record_measurement(ctx.release_id, result.as_dict())
    critical = [r for r in results if r.critical and not r.passed]
    if critical:
        raise ChecksFailedError("; ".join(f"{r.name}: {r.detail}" for r in critical))
    return {r.name: r.detail for r in results}


def check_endpoints(ctx: ReleaseContext) -> dict[str, Any]:
    return verify(ctx, (HttpCheck, ServingEndpointCheck, DatabricksJobCheck))


def probe_latency(ctx: ReleaseContext) -> dict[str, Any]:
    return verify(ctx, (LatencyCheck,))


def fingerprint_after_verify(ctx: ReleaseContext) -> dict[str, Any]:
    tables: dict[str, int] = {}
    for target in ctx.data_targets:
        fingerprint = target.fingerprint()
        ctx.ledger.record_fingerprint(ctx.release_id, target.config.name, FingerprintStage.AFTER_VERIFY, fingerprint)
        tables[target.config.name] = len(fingerprint)
    return tables
