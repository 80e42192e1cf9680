"""Sessions for schemathesis's run over the whole API (tests/e2e/openapi_fuzz.rs).

Every operation is called as the admin, so authenticated routes are
exercised past their 401. Two operations would end that session for every
other: `POST /api/users/logout` revokes it, and `POST /api/users/me/password`
with a wrong current password counts as a failed login, so a few of them lock
the account out. And `POST /api/users/me/addresses` fills the caller's
address book, which refuses a 21st address (409) however valid it is.
Those each get a session of a fresh customer instead.
"""

import itertools
import os
import uuid

import requests
import schemathesis

URL = os.environ["SHOP_FUZZ_URL"]
EMAIL = os.environ["SHOP_FUZZ_EMAIL"]
PASSWORD = os.environ["SHOP_FUZZ_PASSWORD"]
OWN_SESSION = [
    ("POST", "/api/users/logout"),
    ("POST", "/api/users/me/password"),
    ("POST", "/api/users/me/addresses"),
]


def login(email, password):
    response = requests.post(f"{URL}/api/users/login", json={"email": email, "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def bearer(case, token):
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


admin = schemathesis.auth()
for method, path in OWN_SESSION:
    admin = admin.skip_for(method=method, path=path)


@admin
class Admin:
    def get(self, case, ctx):
        return login(EMAIL, PASSWORD)

    def set(self, case, data, ctx):
        bearer(case, data)


fresh = schemathesis.auth(refresh_interval=None)
for method, path in OWN_SESSION:
    fresh = fresh.apply_to(method=method, path=path)

_counter = itertools.count()


@fresh
class FreshCustomer:
    def get(self, case, ctx):
        email = f"fuzz-{uuid.uuid4().hex[:12]}-{next(_counter)}@example.com"
        requests.post(
            f"{URL}/api/users/register",
            json={"email": email, "password": PASSWORD, "name": "Fuzz"},
            timeout=30,
        ).raise_for_status()
        return login(email, PASSWORD)

    def set(self, case, data, ctx):
        bearer(case, data)
