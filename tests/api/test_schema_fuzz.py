"""Fuzz the REST API from its own OpenAPI schema (schemathesis) with a real key: no server errors.

schemathesis' pytest fixture loader does not work with pytest 9, so each operation's hypothesis
strategy is driven here directly; max_examples keeps the run to seconds.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.django_db
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def api_schema(db):
    """The app as WSGI, kept inside the test's transaction as Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_no_operation_answers_500_to_generated_requests(api_schema, tenant_a):
    headers = {"Authorization": f"Bearer {tenant_a.raw_key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"

        call()
