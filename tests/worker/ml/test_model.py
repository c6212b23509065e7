import keras
import numpy as np
import pytest

from worker.ml import model


@pytest.fixture(scope="module")
def members() -> list[keras.Model]:
    nets = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        nets.append(model.build("mobilenet025_scratch"))
    return nets


def test_the_ensemble_logit_is_the_members_mean(members: list[keras.Model]) -> None:
    x = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 1)).astype("float32")
    net = model.ensemble(members)
    expected = np.mean([m.predict(x, verbose=0)[:, 0] for m in members], axis=0)
    assert np.allclose(net.predict(x, verbose=0)[:, 0], expected, atol=1e-4)


def test_every_member_keeps_its_layers_under_its_prefix(members: list[keras.Model]) -> None:
    net = model.ensemble(members)
    names = [layer.name for layer in net.layers]
    assert len(names) == len(set(names))
    for name in model.member_layers(2, model.CAM_LAYER) + model.member_layers(2, model.FEATURES_LAYER):
        assert net.get_layer(name).output.shape[0] is None


def test_an_ensemble_of_one_is_the_member(members: list[keras.Model]) -> None:
    x = np.full((1, 224, 224, 1), 90.0, "float32")
    net = model.ensemble(members[:1])
    assert np.allclose(net.predict(x, verbose=0), members[0].predict(x, verbose=0), atol=1e-5)
