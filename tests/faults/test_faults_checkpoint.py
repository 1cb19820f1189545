"""A damaged checkpoint is refused with an error that names the file and says that deleting its folder retrains
(it failed with safetensors' bare 'HeaderTooLarge' / 'MetadataIncompleteBuffer', naming nothing)."""
import numpy as np
import pytest

from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.models import build_model
from llmemf_lite.train import TrainConfig, train_model
from tests.helpers_small import small_world


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_last_checkpoint_names_the_file_and_the_remedy(tmp_path, damage):
    ds, train, valid, valid_targets, valid_cands = small_world()
    cfg = TrainConfig(epochs=1, progress=False)

    def run():
        model = build_model("sasrec", ds.space, max_len=20)
        return train_model(model, train.take(np.arange(64)), valid, valid_targets, valid_cands, ds.space,
                           ds.pair.domains, cfg, tmp_path / "run")
    run()
    last = tmp_path / "run" / "last.safetensors"
    data = last.read_bytes()
    last.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"<html>not a checkpoint</html>",
                      "empty": b""}[damage])
    with pytest.raises(DataFormatError) as err:
        run()
    assert str(last) in str(err.value) and "delete its folder" in str(err.value)
    assert str(tmp_path / "run") in str(err.value)
