"""`manage.py` on the embedded defaults of `make run`, for the Makefile's `token`, `superuser` and `manage`
targets: the same data folder and the same generated secret key (`.data/secret_key`), the schema migrated,
so the commands work on a fresh clone with nothing to guess.

    python -m xrayweb.local drf_create_token north-clinician
"""

from __future__ import annotations

import os
import sys

from xrayweb.launch import prepare_data_dir


def main(argv: list[str]) -> None:
    prepare_data_dir()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrayweb.settings")
    import django
    from django.core.management import call_command, execute_from_command_line

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
