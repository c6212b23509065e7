from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from diagnosis.client import Client, find_images, write_csv


class Command(BaseCommand):
    help = "Upload every JPEG/PNG under DIR through the REST API in chunks, wait for the results, write a CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="API token (manage.py drf_create_token USER)")
        parser.add_argument("--chunk", type=int, default=50, help="files per request")
        parser.add_argument("--csv", type=Path, default=Path("results.csv"))
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the results")

    def handle(
        self, *args: Any, folder: Path, server: str, token: str, chunk: int, csv: Path, timeout: float, **options: Any
    ) -> None:
        paths = find_images(folder)
        if not paths:
            raise CommandError(f"no .jpeg, .jpg or .png files under {folder}")
        client = Client(server, token)
        with tqdm(total=len(paths), desc="uploading", unit="img") as bar:
            submitted = client.submit_all(paths, chunk, root=folder, progress=bar.update)
        with tqdm(total=len(submitted.study_ids), desc="analysing", unit="img") as bar:
            client.wait(submitted.batches, timeout=timeout, progress=bar.update)
        rows = write_csv(csv, client, submitted)
        self.stdout.write(f"{len(submitted.study_ids)} studies, {len(submitted.errors)} refused; {rows} rows in {csv}")
