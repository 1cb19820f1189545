import numpy as np

from llmemf_lite.batching import NO_POS, NO_TARGET, evaluation_views, training_views
from llmemf_lite.data.dataset import ItemSpace

SPACE = ItemSpace(3, 2)   # X items 0,1,2; Y items 3,4; PAD = 5


def test_training_views_by_hand():
    # sequence 0,3,1,4,2 -> input 0,3,1,4 ; window of 3 keeps 3,1,4
    v = training_views([np.array([0, 3, 1, 4, 2])], SPACE, max_len=3)
    assert v.mixed.tolist() == [[3, 1, 4]]
    assert v.mixed_domain.tolist() == [[1, 0, 1]]
    assert v.next_item.tolist() == [[1, 4, 2]]
    assert v.domain_seq[:, 0].tolist() == [[5, 0, 1], [5, 3, 4]]
    assert v.domain_pos[:, 0].tolist() == [[1, 2, 2], [1, 1, 2]]
    assert v.next_domain[:, 0].tolist() == [[1, 2, 2], [4, 4, NO_TARGET]]
    assert v.domain_next[:, 0].tolist() == [[NO_TARGET, 1, 2], [NO_TARGET, 4, NO_TARGET]]
    # item 0 is older than the merged window: it has no merged position
    assert v.domain_time[:, 0].tolist() == [[NO_POS, NO_POS, 1], [NO_POS, 0, 2]]


def test_evaluation_views_have_no_targets_inside_and_left_padding():
    v, targets = evaluation_views([np.array([3, 0, 4]), np.array([1, 2])], SPACE, max_len=4)
    assert targets.tolist() == [4, 2]
    assert v.mixed.tolist() == [[5, 5, 3, 0], [5, 5, 5, 1]]
    assert v.next_item[0].tolist() == [NO_TARGET, NO_TARGET, 0, NO_TARGET]
    # a history without domain-Y items has no Y position at its last step
    assert v.domain_pos[1, 1, -1] == NO_POS
    assert v.domain_pos[0, 1, -1] == 3
