from __future__ import annotations

import pytest

from tests.unit.verify.fakeapi import FakeApi, make_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("verify-tls"))


@pytest.fixture(scope="session")
def session_api(certs):
    _, cert, key = certs
    api = FakeApi(cert, key)
    yield api
    api.close()


@pytest.fixture
def api(session_api):
    session_api.answer()
    from tests.unit.verify.fakeapi import Reply
    session_api.answer(Reply())
    return session_api


@pytest.fixture
def ca_file(certs):
    return str(certs[0])
