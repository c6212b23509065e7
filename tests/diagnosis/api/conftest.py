import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def alice_api(alice) -> APIClient:  # type: ignore[no-untyped-def]
    return token_client(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:  # type: ignore[no-untyped-def]
    return token_client(bob)
