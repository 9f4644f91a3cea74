"""Calls from outside: real HTTP to the live server, signed in by session cookie, API token or metrics token."""

import requests
from django.conf import settings
from django.test import Client


class Outside:
    def __init__(self, live_server):
        self.base = live_server.url

    def get(self, path: str, *, user=None, headers: dict | None = None, **kwargs) -> requests.Response:
        cookies = {}
        if user is not None:
            client = Client()
            client.force_login(user)
            cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
        return requests.get(self.base + path, headers=headers or {}, cookies=cookies, timeout=20, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, timeout=20, **kwargs)
