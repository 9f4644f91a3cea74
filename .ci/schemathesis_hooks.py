"""Checks of the portal's own for schemathesis (loaded by .ci/api-fuzz.sh through SCHEMATHESIS_HOOKS)."""

import schemathesis
from schemathesis.core.parameters import ParameterLocation

AUTHORIZE = "/api/v1/authorize/"


@schemathesis.check
def authorize_denies_what_it_cannot_read(ctx, response, case):
    """POST /authorize/ is deny by default: a question outside its schema gets 200 `deny` / `invalid_request`, and no
    answer to any question is an allow it could not have read. Stands in for negative_data_rejection there."""
    if case.operation.path != AUTHORIZE or case.method.upper() != "POST" or response.status_code != 200:
        return None
    answer = response.json()
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    if negative and (answer.get("decision"), answer.get("reason")) != ("deny", "invalid_request"):
        raise AssertionError(f"A question outside the schema was answered {answer!r}, not deny / invalid_request.")
    if not negative and answer.get("reason") == "invalid_request":
        raise AssertionError(f"A question the schema allows was answered invalid_request: {answer.get('errors')!r}.")
    return True
