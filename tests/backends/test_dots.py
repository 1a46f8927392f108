"""The dot stamper against its definition and against the numpy fallback."""

import numpy as np

from backends import dots


def test_offsets_are_the_pixels_within_the_radius():
    for size in (1, 2, 3, 4, 5, 8):
        ox, oy = dots.dot_offsets(size)
        d2 = (ox + 0.5 - size / 2) ** 2 + (oy + 0.5 - size / 2) ** 2
        assert np.all(d2 <= (size / 2) ** 2)
        assert len(ox) == int(
            np.sum(
                [
                    (i + 0.5 - size / 2) ** 2 + (j + 0.5 - size / 2) ** 2 <= (size / 2) ** 2
                    for i in range(size)
                    for j in range(size)
                ]
            )
        )
    assert len(dots.dot_offsets(3)[0]) == 9  # a 3 px round sprite covers its whole 3x3 box
    assert len(dots.dot_offsets(4)[0]) == 12  # 4 px: the corners are cut


def test_stamp_places_dots_in_order_and_clips():
    img = np.zeros((10, 12), np.uint32)
    dots.stamp(
        img, np.array([5.5, 6.0, -3.0, np.nan]), np.array([4.5, 4.5, 2.0, 1.0]), np.array([1, 2, 3, 4]), 3
    )
    # dot 0: centre pixel (5, 4), box x 4..6, y 3..5; dot 1 centred on a pixel edge (x = 6.0): x 5..7, y 3..5
    assert img[3, 4] == 1 and img[5, 4] == 1
    assert img[3, 5] == 2 and img[5, 7] == 2  # the later dot covers the earlier one
    assert img[2, 5] == 0 and img[6, 5] == 0 and np.count_nonzero(img) == 9 + 9 - 6
    assert not np.any(img == 3) and not np.any(img == 4)  # off the image, and NaN


def test_compiled_matches_numpy_and_counts_overlaps():
    rng = np.random.default_rng(1)
    px, py = rng.uniform(-5, 70, 3000), rng.uniform(-5, 50, 3000)
    vals = rng.integers(1, 2**31, 3000).astype(np.uint32)
    a = np.zeros((48, 64), np.uint32)
    dots.stamp(a, px, py, vals, 4)
    b = np.zeros((48, 64), np.uint32).reshape(-1)
    x0, y0 = dots._corners(px, py, 4)
    dots._stamp_np(b, 64, 48, x0, y0, vals, *dots.dot_offsets(4))
    np.testing.assert_array_equal(a.reshape(-1), b)
    c = np.zeros((48, 64), np.int32)
    dots.count(c, px, py, 4)
    inside = sum(
        np.sum((x >= 0) & (x < 64) & (y >= 0) & (y < 48))
        for x, y in zip(
            x0[:, None] + dots.dot_offsets(4)[0], y0[:, None] + dots.dot_offsets(4)[1], strict=True
        )
    )
    assert c.sum() == inside


def test_lookup_clamps_to_the_last_entry():
    idx = np.array([[0, 1], [5, 2]], np.int32)
    out = np.empty((2, 2), np.uint32)
    dots.lookup(idx, np.array([10, 11, 12], np.uint32), out)
    np.testing.assert_array_equal(out, [[10, 11], [12, 12]])
