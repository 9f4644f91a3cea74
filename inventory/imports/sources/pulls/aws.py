"""The AWS IAM credential report, fetched as `aws iam generate-credential-report` / `get-credential-report` do.

GenerateCredentialReport starts a report (or says a recent one is COMPLETE); GetCredentialReport then returns the
same CSV a file import takes, base64 in the API and bytes from boto3. Credentials come from boto3's standard chain
(environment, the shared config's `profile`, container or instance role): nothing here ever holds one.
"""

import time

from django.conf import settings

from .errors import PullFailed

# Between GenerateCredentialReport calls while AWS builds the report (seconds; AWS takes a few for small accounts).
POLL_SECONDS = 2.0


def _client(options: dict[str, str]):
    import boto3  # loaded by the worker that pulls, not by every web process
    from botocore.config import Config

    session = boto3.session.Session(profile_name=options.get("profile") or None)
    timeout = settings.SOURCE_PULL_TIMEOUT_SECONDS
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3, "mode": "standard"})
    return session.client(
        "iam",
        region_name=options.get("region") or "us-east-1",
        endpoint_url=options.get("endpoint_url") or None,
        config=config,
    )


def fetch_credential_report(options: dict[str, str], *, wait_seconds: float | None = None) -> bytes:
    """The account's credential report as CSV bytes; PullFailed (with AWS's error code, never a credential) if not."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    deadline = time.monotonic() + (settings.SOURCE_PULL_TIMEOUT_SECONDS if wait_seconds is None else wait_seconds)
    try:
        iam = _client(options)
        while iam.generate_credential_report()["State"] != "COMPLETE":
            if time.monotonic() >= deadline:
                raise PullFailed("AWS did not finish the credential report in time; the next pull fetches it.")
            time.sleep(POLL_SECONDS)
        report = iam.get_credential_report()
    except (NoCredentialsError, ProfileNotFound) as error:
        raise PullFailed(f"No AWS credentials for this pull ({type(error).__name__}).") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "unknown")
        raise PullFailed(f"AWS refused the credential report call ({code}).") from None
    except BotoCoreError as error:
        raise PullFailed(f"AWS could not be reached ({type(error).__name__}).") from None
    if report.get("ReportFormat", "text/csv") != "text/csv":
        raise PullFailed("AWS returned the credential report in a format other than text/csv.")
    content = report["Content"]
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise PullFailed(f"The credential report is larger than IMPORT_MAX_BYTES ({settings.IMPORT_MAX_BYTES}).")
    return content
