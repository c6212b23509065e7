from pathlib import Path

import pytest

from tests.factories import judged_study

pytestmark = pytest.mark.django_db


def test_files_go_to_256_shared_folders_named_by_the_study_not_a_folder_a_study(alice, settings) -> None:
    studies = [judged_study(alice) for _ in range(6)]
    media = Path(settings.MEDIA_ROOT)
    for s in studies:
        shard = str(s.pk)[:2]
        names = [str(f.name) for f in (s.image, s.preview, s.thumbnail, s.result.heatmap, s.result.overlay)]
        assert names[0] == f"studies/{shard}/{s.pk}-original.png"
        assert all(n.startswith(f"derived/{shard}/{s.pk}-") for n in names[1:]), names
        assert all((media / n).is_file() for n in names)
    folders = {p.relative_to(media) for p in media.rglob("*") if p.is_dir()}
    shards = {str(s.pk)[:2] for s in studies}
    assert folders == {Path("studies"), Path("derived")} | {
        Path(top, x) for top in ("studies", "derived") for x in shards
    }
