import pytest

from llmemf_lite.pairs import get_pair, register_pair, registered_pairs


def test_registry_has_the_paper_pairs():
    assert {"movie_book", "food_kitchen"} <= set(registered_pairs())
    fk = get_pair("food_kitchen")
    assert fk.x == "food" and fk.y == "kitchen"
    assert fk.amazon_categories == ("Grocery_and_Gourmet_Food", "Home_and_Kitchen")


def test_user_pairs_and_errors():
    pair = register_pair("test_toys_games", ("toys", "games"), ("Toys_and_Games", "Video_Games"), overwrite=True)
    assert get_pair("test_toys_games") is pair
    with pytest.raises(ValueError, match="already registered"):
        register_pair("test_toys_games", ("toys", "games"), ("a", "b"))
    with pytest.raises(ValueError, match="two different"):
        register_pair("bad", ("x", "x"), ("a", "b"))
    with pytest.raises(KeyError, match="unknown domain pair 'nope'"):
        get_pair("nope")
