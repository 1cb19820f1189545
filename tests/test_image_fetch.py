"""The item-image fetcher against a real HTTP server on 127.0.0.1: fetched, cached on re-run, failures recorded."""
import io
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from llmemf_lite.data.dataset import CrossDomainDataset
from llmemf_lite.data.images import ImageFetchConfig, fetch_item_images, format_summary
from loopback_server import LoopbackServer


def image_bytes(fmt, colour):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def served_dataset(tmp_path):
    with LoopbackServer() as server:
        server.files["/img/a.jpg"] = image_bytes("JPEG", "red")
        server.files["/img/b.png"] = image_bytes("PNG", "blue")
        server.files["/img/page"] = b"<html>not an image</html>"
        server.content_type["/img/page"] = "text/html"
        server.files["/img/broken.jpg"] = b"\xff\xd8\xff\xe0garbage"
        server.content_type["/img/broken.jpg"] = "image/jpeg"
        urls = [server.base + p for p in ("/img/a.jpg", "/img/page", "/img/missing.jpg")] + \
               [server.base + p for p in ("/img/b.png", "/img/broken.jpg")] + [None]
        items = pd.DataFrame({"item_id": range(6), "domain": ["food"] * 3 + ["kitchen"] * 3,
                              "source_id": ["A1", "A2", "A3", "B1", "B/2", "B3"], "title": list("abcdef"),
                              "description": [None] * 6, "image": urls})
        seqs = pd.DataFrame({"user": ["u"], "split": ["train"], "kind": ["mixed"], "items": [[0, 3]],
                             "timestamps": [None]})
        from llmemf_lite.pairs import get_pair
        from llmemf_lite.data.dataset import dataset_card
        ds = CrossDomainDataset(get_pair("food_kitchen"), items, seqs)
        ds.card = dataset_card(ds, source="test", synthetic=False, provenance={})
        folder = ds.save(tmp_path / "ds")
        yield server, CrossDomainDataset.load(folder)


def test_images_are_fetched_verified_and_failures_recorded(served_dataset):
    server, ds = served_dataset
    summary = fetch_item_images(ds, ImageFetchConfig(workers=3, timeout_s=5), progress=False)
    assert summary == {"fetched": 2, "cached": 0, "failed": 3, "without_url": 1}
    assert ds.items["image"].iat[0] == "images/food/A1.jpg" and ds.items["image"].iat[3] == "images/kitchen/B1.png"
    assert Path(ds.image_location(0)).is_file() and Image.open(ds.image_location(3)).size == (8, 8)
    reasons = {f["source_id"]: f["reason"] for f in ds.card["images"]["failures"]}
    assert reasons["A3"].startswith("HTTP 404")
    assert "not a readable image (text/html)" in reasons["A2"]
    assert reasons["B/2"].startswith("not a readable image")
    assert ds.card["skipped"]["images not fetched"]["count"] == 3
    assert ds.items["image"].iat[1].startswith("http://127.0.0.1")           # failed items keep their URL
    assert ds.card["coverage"]["images_local_food"] == pytest.approx(1 / 3, abs=1e-4)
    back = CrossDomainDataset.load(ds.folder)                                 # saved in place
    assert back.items["image"].iat[0] == "images/food/A1.jpg" and back.card["images"]["failed"] == 3
    assert "2 fetched" in format_summary(summary)


def test_second_run_uses_the_cache_and_retries_only_failures(served_dataset):
    server, ds = served_dataset
    fetch_item_images(ds, ImageFetchConfig(workers=2, timeout_s=5), progress=False)
    server.files["/img/missing.jpg"] = image_bytes("PNG", "green")             # the host fixed one image
    server.requests.clear()
    summary = fetch_item_images(CrossDomainDataset.load(ds.folder), ImageFetchConfig(workers=2), progress=False)
    assert summary == {"fetched": 1, "cached": 2, "failed": 2, "without_url": 1}
    assert sorted(p for p, _ in server.requests) == ["/img/broken.jpg", "/img/missing.jpg", "/img/page"]
    again = CrossDomainDataset.load(ds.folder)
    assert again.items["image"].iat[2] == "images/food/A3.png"
    assert again.card["skipped"]["images not fetched"]["count"] == 2


def test_needs_a_folder(served_dataset):
    _server, ds = served_dataset
    ds.folder = None
    with pytest.raises(ValueError, match="no folder"):
        fetch_item_images(ds, progress=False)


def test_build_dataset_fetches_amazon_images_into_the_dataset_folder(tmp_path, artifacts):
    from test_amazon_import import TITLES, write_release

    from llmemf_lite.data.build import build_dataset

    with LoopbackServer() as server:
        for asin in TITLES:
            server.files[f"/i/{asin}.jpg"] = image_bytes("JPEG", "white")
        del server.files["/i/b2.jpg"]                                          # one image is gone from the host
        meta = [[repr({"asin": a, "title": TITLES[a], "imUrl": f"{server.base}/i/{a}.jpg"}) for a in TITLES
                 if (a[0] == "m") == (d == 0)] for d in (0, 1)]
        raw = write_release(tmp_path / "raw", meta=tuple(meta))
        ds = build_dataset("movie_book", "amazon", raw, k_core=2, fetch_images=True, progress=False)
        assert ds.card["images"]["fetched"] == 4 and ds.card["images"]["failed"] == 1
        assert all(Path(ds.image_location(i)).is_file() for i in range(4))
        assert str(ds.image_location(0)).startswith(str(artifacts))          # inside the dataset folder
        again = build_dataset("movie_book", "amazon", raw, k_core=2, fetch_images=True, progress=False)
        assert again.card["images"]["cached"] == 4 and again.card["images"]["failed"] == 1
