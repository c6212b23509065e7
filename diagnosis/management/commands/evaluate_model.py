from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Evaluate the shipped model on DIR/NORMAL and DIR/PNEUMONIA; print a table, write JSON and plots."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, required=True)
        parser.add_argument("--json", type=Path, required=True, help="output JSON; the PNG plots go next to it")
        parser.add_argument("--model-dir", type=Path, default=None, help="defaults to MODEL_DIR")

    def handle(self, *args: Any, data: Path, json: Path, model_dir: Path | None, **options: Any) -> None:
        from worker.ml.evaluate import evaluate, table
        from worker.ml.spec import ModelSpec

        try:
            result = evaluate(ModelSpec.load(model_dir or settings.MODEL_DIR), data, json)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(table(result))
        self.stdout.write(f"wrote {json} and its ROC and reliability plots")
