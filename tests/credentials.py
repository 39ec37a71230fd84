"""The test stacks' admin credential: fresh per test session, never a secret in the repo."""

import secrets

#: Accepted by test stacks as their bootstrap (admin) token; clients send it as SAFETYMON_TOKEN.
TEST_TOKEN = "test-" + secrets.token_urlsafe(24)
#: Headers of an authenticated test client (the bootstrap admin).
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
