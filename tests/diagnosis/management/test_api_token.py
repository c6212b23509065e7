"""`make token` runs `manage.py api_token`: the key alone, the same every time (`TOKEN=$(make -s token ...)`)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_it_prints_the_users_key_alone_and_the_same_each_time(alice) -> None:
    first, again = StringIO(), StringIO()
    call_command("api_token", "alice", stdout=first)
    call_command("api_token", "alice", stdout=again)
    assert first.getvalue() == again.getvalue() == Token.objects.get(user=alice).key + "\n"


def test_an_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        call_command("api_token", "nobody")
