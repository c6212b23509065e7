from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from xrayclient import cli


def bars(what: str, total: int) -> Callable[[int], None]:
    bar = tqdm(total=total, desc=what, unit="img")

    def step(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return step


class Command(BaseCommand):
    help = cli.DESCRIPTION + " (The same as `python -m xrayclient`, with progress bars.)"

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(
        self, *args: Any, folder: Path, server: str, token: str, chunk: int, csv: Path, timeout: float, **options: Any
    ) -> None:
        try:
            self.stdout.write(
                cli.run(folder, server=server, token=token, chunk=chunk, csv=csv, timeout=timeout, progress=bars)
            )
        except cli.NoImages as exc:
            raise CommandError(str(exc)) from exc
