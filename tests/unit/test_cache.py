"""The result cache without a server: keys, value framing, the in-process store."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot

from application.results import matched_tag
from cache import CacheKeys, MemoryStore, codec, input_digest
from optimizer import parse_options
from optimizer.masks import output_id

KEYS = CacheKeys("d" * 64, "u2netp:md5", "options")


def keys_for(data: bytes, **options: str) -> CacheKeys:
    return CacheKeys(input_digest(data), "u2netp:md5", output_id(parse_options(options)))


# --- keys and ETags ------------------------------------------------------------------------


def test_keys_are_stable_and_change_with_every_input() -> None:
    base = keys_for(b"photo")
    assert keys_for(b"photo") == base and base.etag("image") == keys_for(b"photo").etag("image")
    assert keys_for(b"photo!").result != base.result
    assert keys_for(b"photo!").mask != base.mask
    other_model = CacheKeys(base.digest, "u2net:md5", base.output_id)
    assert other_model.mask != base.mask and other_model.result != base.result


def test_one_requests_keys_share_a_cluster_slot_and_photos_spread() -> None:
    slots = set()
    for number in range(50):
        keys = keys_for(f"photo {number}".encode(), format="WEBP")
        scoped = CacheKeys(keys.digest, keys.model_id, keys.output_id, namespace="client-a")
        for one in (keys, scoped):  # a client's own cache (CACHE_SCOPE=client) too
            assert key_slot(one.result.encode()) == key_slot(one.mask.encode())
        assert scoped.mask != keys.mask and scoped.etag("image") != keys.etag("image")
        slots.add(key_slot(keys.mask.encode()))
    assert len(slots) > 40  # one slot per photo, not one for everything


@pytest.mark.parametrize(
    "options",
    [
        {"format": "WEBP"},
        {"quality": "90"},
        {"max_width": "300"},
        {"max_height": "300"},
        {"bg_color": "red"},
        {"crop": "true"},
        {"crop": "true", "crop_margin": "5%"},
        {"only_mask": "true"},
        {"model": "u2net"},
        {"preset": "thumbnail"},
    ],
)
def test_every_option_that_changes_the_output_changes_the_result_key(options: dict) -> None:
    base = keys_for(b"photo")
    changed = keys_for(b"photo", **options)
    assert changed.result != base.result
    assert changed.mask == base.mask  # the mask depends on the photo and model only
    assert changed.etag("image") != base.etag("image")


def test_options_spelled_differently_share_a_result() -> None:
    assert keys_for(b"p", format="jpg").result == keys_for(b"p", format="JPEG").result
    assert (
        keys_for(b"p", preset="web").result
        == keys_for(b"p", format="JPEG", quality="80", max_width="1200", max_height="800").result
    )


def test_representations_have_their_own_strong_etags() -> None:
    image, json = KEYS.etag("image"), KEYS.etag("json:None")
    assert image != json
    assert image.startswith('"') and image.endswith('"') and not image.startswith("W/")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
        ("abc", False),
        ("", False),
    ],
)
def test_if_none_match(header: str, matches: bool) -> None:
    assert (matched_tag(header, '"abc"') is not None) is matches


# --- framing -------------------------------------------------------------------------------


def test_values_round_trip() -> None:
    value = codec.encode({"format": "PNG", "width": 3}, b"\x89PNG payload")
    assert codec.decode(value) == ({"format": "PNG", "width": 3}, b"\x89PNG payload")


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[:-1],
        lambda v: v[: len(v) // 2],
        lambda v: b"",
        lambda v: b"junk" + v[4:],
        lambda v: v[:20] + bytes([v[20] ^ 1]) + v[21:],
        lambda v: v + b"x",
    ],
)
def test_damaged_values_read_as_none(damage) -> None:  # type: ignore[no-untyped-def]
    assert codec.decode(damage(codec.encode({"a": 1}, b"payload" * 100))) is None


# --- the in-process store ------------------------------------------------------------------


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_memory_store_finds_what_it_saved() -> None:
    store = MemoryStore(max_bytes=10_000, max_item_bytes=5_000, ttl_s=60)
    run(store.save([(KEYS.result, {"w": 1}, b"result"), (KEYS.mask, {}, b"mask")]))
    found = run(store.lookup(KEYS))
    assert found.result == ({"w": 1}, b"result") and found.mask == ({}, b"mask")


def test_memory_store_evicts_the_least_recently_used_within_its_bound() -> None:
    store = MemoryStore(max_bytes=3_000, max_item_bytes=3_000, ttl_s=60)
    keys = [CacheKeys(str(n), "m", "o") for n in range(5)]
    for key in keys[:3]:
        run(store.save([(key.result, {}, b"x" * 900)]))
    run(store.lookup(keys[0]))  # keys[0] is now the most recently used
    run(store.save([(keys[3].result, {}, b"x" * 900)]))
    assert store.stored_bytes <= 3_000
    assert run(store.lookup(keys[0])).result is not None
    assert run(store.lookup(keys[1])).result is None  # the least recently used went


def test_memory_store_skips_items_over_the_item_bound() -> None:
    store = MemoryStore(max_bytes=100_000, max_item_bytes=1_000, ttl_s=60)
    run(store.save([(KEYS.result, {}, b"x" * 2_000), (KEYS.mask, {}, b"small")]))
    found = run(store.lookup(KEYS))
    assert found.result is None and found.mask is not None


def test_memory_store_forgets_after_the_ttl() -> None:
    now = [0.0]
    store = MemoryStore(max_bytes=10_000, max_item_bytes=10_000, ttl_s=60, clock=lambda: now[0])
    run(store.save([(KEYS.result, {}, b"x")]))
    now[0] = 59.0
    assert run(store.lookup(KEYS)).result is not None
    now[0] = 61.0
    assert run(store.lookup(KEYS)).result is None
    assert store.stored_bytes == 0


def test_a_corrupted_value_is_a_miss_and_is_dropped() -> None:
    store = MemoryStore(max_bytes=10_000, max_item_bytes=10_000, ttl_s=60)
    store.put_raw(KEYS.result, codec.encode({}, b"payload")[:-3])
    assert run(store.lookup(KEYS)).result is None
    assert store.stored_bytes == 0
