"""The command line of `python -m xrayclient` (and of `manage.py submit_folder`, which shows tqdm bars)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xrayclient import Client, find_images, write_csv

DESCRIPTION = (
    "Upload every JPEG/PNG under FOLDER through the REST API in chunks, wait for the results, "
    "and write a CSV of file name, study id, status, label, probability and error."
)
Progress = Callable[[str, int], Callable[[int], None]]  # (what, total) -> step(n)


class NoImages(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path)
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--token", required=True, help="API token (manage.py drf_create_token USER)")
    p.add_argument("--chunk", type=int, default=50, help="files per request")
    p.add_argument("--csv", type=Path, default=Path("results.csv"))
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the results")


def run(folder: Path, *, server: str, token: str, chunk: int, csv: Path, timeout: float, progress: Progress) -> str:
    """Upload, wait, write the CSV; the summary line. Raises NoImages when the folder has none."""
    paths = find_images(folder)
    if not paths:
        raise NoImages(f"no .jpeg, .jpg or .png files under {folder}")
    client = Client(server, token)
    submitted = client.submit_all(paths, chunk, root=folder, progress=progress("uploading", len(paths)))
    client.wait(submitted.batches, timeout=timeout, progress=progress("analysing", len(submitted.study_ids)))
    rows = write_csv(csv, client, submitted)
    return f"{len(submitted.study_ids)} studies, {len(submitted.errors)} refused; {rows} rows in {csv}"


def counter(what: str, total: int) -> Callable[[int], None]:
    """Plain progress on stderr (no dependency beyond requests)."""
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        print(f"\r{what}: {done}/{total}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    return step


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xrayclient", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(
            run(
                args.folder,
                server=args.server,
                token=args.token,
                chunk=args.chunk,
                csv=args.csv,
                timeout=args.timeout,
                progress=counter,
            )
        )
    except NoImages as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
