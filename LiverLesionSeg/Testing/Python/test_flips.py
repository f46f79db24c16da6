"""A CT stored flipped in its plane (the liver on the patient's left: situs inversus, or left and right
swapped in the file; turned half a turn, as LPS voxels labelled RAS are) is segmented flipped back and
the result put onto it as stored, with a caution; one as stored is left as it is.

The bundled model on the bundled sample (a real HCC CT); the last test shows why: without the check
the network finds little of a mirrored liver."""

import numpy as np
import pytest

from LiverLesionSegLib import resources
from LiverLesionSegLib.ensemble import segment_with_models
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.flips import FRONT_BACK, HALF_TURN, LEFT_RIGHT, Flip
from LiverLesionSegLib.metrics import dice

CAUTION = "the CT looks stored with"


@pytest.fixture(scope="module")
def sample():
    return read_input_volume(resources.sample_case_path()), resources.load_model(None)


@pytest.fixture(scope="module")
def as_stored(sample):
    ct, model = sample
    return segment_with_models(ct, [model])


def test_a_ct_as_stored_is_not_flipped(as_stored):
    assert not as_stored.flipped
    assert as_stored.liver_ml > 1000
    assert not any(CAUTION in caveat for caveat in as_stored.caveats)


@pytest.mark.parametrize("flip", [LEFT_RIGHT, HALF_TURN, FRONT_BACK], ids=lambda flip: "-".join(map(str, flip.axes)))
def test_a_flipped_ct_is_segmented_flipped_back_and_its_result_put_onto_it_with_a_caution(sample, as_stored,
                                                                                          flip: Flip):
    ct, model = sample
    result = segment_with_models(ct.with_array(flip.apply(ct.array)), [model])
    assert result.flipped == flip.swapped
    assert any(f"{CAUTION} {flip.swapped} swapped" in caveat for caveat in result.caveats)
    # on the flipped CT's own voxels: the as-stored result flipped
    assert dice(result.liver.array > 0, flip.apply(as_stored.liver.array) > 0) > 0.99
    assert dice(result.lesion.array > 0, flip.apply(as_stored.lesion.array) > 0) > 0.95
    np.testing.assert_allclose(result.lesion_probability.array, flip.apply(as_stored.lesion_probability.array),
                               atol=0.02)


def test_without_the_check_the_network_finds_little_of_a_mirrored_liver(sample, as_stored, monkeypatch):
    """Why the check is there: the same network on the mirrored CT, the check turned off."""
    from LiverLesionSegLib import infer

    ct, model = sample
    monkeypatch.setattr(infer, "flip_to_segment", lambda *args: None)
    plain = segment_volume(ct.with_array(LEFT_RIGHT.apply(ct.array)), model)
    assert dice(plain.liver.array > 0, LEFT_RIGHT.apply(as_stored.liver.array) > 0) < 0.9
