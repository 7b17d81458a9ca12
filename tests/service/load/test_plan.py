import numpy as np

from service.load.plan import LARGEST_FEATURE_FACTOR, cut_chunks


def test_chunks_cover_every_fid_once_within_both_limits():
    fids = np.arange(1, 1001)
    sizes = np.random.default_rng(1).integers(10, 5000, size=1000)
    chunks = cut_chunks(fids, sizes, max_features=100, max_bytes=60_000)
    assert chunks[0].fid_first == 1 and chunks[-1].fid_last == 1000
    assert sum(c.features for c in chunks) == 1000
    for chunk, nxt in zip(chunks, chunks[1:] + [None]):
        first, last, count, weight = chunk.fid_first, chunk.fid_last, chunk.features, chunk.weight
        assert count == last - first + 1 <= 100
        chunk_sizes = sizes[first - 1:last]
        assert chunk_sizes.sum() <= 60_000 or count == 1
        # The weight counts the largest feature extra: GEOS validates it with an index.
        assert weight == chunk_sizes.sum() + LARGEST_FEATURE_FACTOR * chunk_sizes.max()
        if nxt:
            assert nxt.fid_first == last + 1


def test_heavy_features_get_chunks_of_their_own():
    fids = np.array([0, 1, 2, 3])
    chunks = cut_chunks(fids, np.array([10, 1_000_000, 10, 10]), 100, 1000)
    assert [(c.fid_first, c.fid_last) for c in chunks] == [(0, 0), (1, 1), (2, 3)]


def test_gaps_in_fids_are_fine():
    fids = np.array([3, 7, 8, 20, 21])
    chunks = cut_chunks(fids, np.ones(5, dtype=np.int64), 2, 10**9)
    assert [(c.fid_first, c.fid_last, c.features) for c in chunks] == [
        (3, 7, 2), (8, 20, 2), (21, 21, 1)]


def test_one_huge_polygon_weighs_more_than_as_many_bytes_of_small_ones():
    fids = np.arange(4)
    small = cut_chunks(fids, np.full(4, 250), 100, 1000)
    huge = cut_chunks(fids[:1], np.array([1000]), 100, 1000)
    assert small[0].weight < huge[0].weight


def test_a_chunk_is_read_in_batches_of_about_two_megabytes_of_geometry():
    from service.load.chunk import BATCH_BYTES, batch_rows

    assert batch_rows(features=10_000, weight=8_000_000) == 10_000 * BATCH_BYTES // 8_000_000
    assert batch_rows(features=1, weight=66_000_000) == 1      # one huge polygon: one row
    assert batch_rows(features=20_000, weight=1_000) == 4096   # capped at the reader's batch
