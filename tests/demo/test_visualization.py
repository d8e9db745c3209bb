"""Localization pictures (alm_tf.inference.pictures): geometry, layout, PNG files."""

import numpy as np
import pytest
from PIL import Image

from alm_tf.inference import pictures as vis


def _image(h=80, w=40):
    return np.full((h, w, 3), 128, np.uint8)


def test_draw_box_lands_on_the_box_edges():
    out = vis.draw_box(_image(101, 51), [0.2, 0.2, 0.6, 0.8], colour=(255, 0, 0), width=1)
    a = np.asarray(out)
    # y1 = 0.2 * 100 = 20, x1 = 0.2 * 50 = 10, y2 = 60, x2 = 40.
    assert tuple(a[20, 25]) == (255, 0, 0) and tuple(a[60, 25]) == (255, 0, 0)
    assert tuple(a[40, 10]) == (255, 0, 0) and tuple(a[40, 40]) == (255, 0, 0)
    assert tuple(a[5, 5]) == (128, 128, 128)  # outside untouched
    assert tuple(a[40, 25]) == (255, 0, 0)  # centre cross
    assert out.size == (51, 101)


def test_draw_box_clips_out_of_image_boxes_and_rejects_nan():
    out = np.asarray(vis.draw_box(_image(), [-0.5, -0.5, 1.5, 1.5], colour=(0, 255, 0), width=1))
    assert tuple(out[0, 20]) == (0, 255, 0) and tuple(out[79, 20]) == (0, 255, 0)
    with pytest.raises(ValueError, match="finite"):
        vis.draw_box(_image(), [0, 0, float("nan"), 1])


def test_draw_box_label_is_drawn():
    plain = np.asarray(vis.draw_box(_image(200, 100), [0.5, 0.1, 0.9, 0.9], ""))
    named = np.asarray(vis.draw_box(_image(200, 100), [0.5, 0.1, 0.9, 0.9], "hat"))
    assert (plain != named).any()
    assert (named[80:100] > 200).all(axis=-1).any()  # white text on the tag above the box


def test_draw_box_label_of_a_box_at_the_top_goes_below_it():
    """A small box touching the top keeps its edges visible: the tag is under it."""
    box = [0.0, 0.3, 0.05, 0.7]  # rows 0..~10 of 200
    named = np.asarray(vis.draw_box(_image(200, 100), box, "glasses", colour=(255, 0, 0), width=1))
    plain = np.asarray(vis.draw_box(_image(200, 100), box, "", colour=(255, 0, 0), width=1))
    np.testing.assert_array_equal(named[:10], plain[:10])  # the box itself untouched
    assert (named[11:30] > 200).all(axis=-1).any()  # white text on the tag below it


def test_level_panels_shape_and_levels():
    boxes = np.array([[[0.0, 0.0, 0.5, 1.0]], [[0.5, 0.0, 1.0, 1.0]], [[0.2, 0.2, 0.8, 0.8]]], np.float32)
    row = vis.level_panels(_image(80, 40), boxes, 0, "hat", panel_height=64, gap=4)
    assert row.size == (4 * 32 + 3 * 4, 64)
    with pytest.raises(ValueError, match="attribute"):
        vis.level_panels(_image(), boxes, 3, "x")
    with pytest.raises(ValueError, match="boxes"):
        vis.level_panels(_image(), boxes[0], 0, "x")


def test_grid_and_png_file(tmp_path):
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(0, 1, (3, 4, 4)), axis=-1)[..., [0, 1, 2, 3]]
    names = ["hat", "glasses", "boots", "skirt"]
    path = vis.save_localization_picture(
        str(tmp_path / "sub" / "p.png"), Image.fromarray(_image(120, 50)), boxes, [0, 2], names,
        probabilities=[0.9, 0.1, 0.7, 0.2], labels=[1, 0, 1, 0], title="p.jpg", panel_height=96)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size[1] >= 2 * 96 and im.size[0] > 4 * 40
    with pytest.raises(ValueError, match="names"):
        vis.localization_grid(_image(), boxes, [0], names[:2])
    with pytest.raises(ValueError, match="at least one"):
        vis.localization_grid(_image(), boxes, [], names)


def test_box_centre():
    assert vis.box_centre([0.1, 0.2, 0.3, 0.6]) == pytest.approx((0.2, 0.4))
