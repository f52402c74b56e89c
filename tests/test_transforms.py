"""Joint transforms keep image, heatmap, keypoints and boxes aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from focusclip.model.transforms import SampleTransform


def _scene():
    img = np.zeros((120, 200, 3), np.uint8)
    img[40:80, 100:150] = 255
    heat = np.zeros((120, 200), np.float32)
    heat[40:80, 100:150] = 1.0
    corners = np.array([[100, 40], [150, 80]], np.float32)
    return Image.fromarray(img), heat, corners


@pytest.mark.parametrize("seed", range(5))
def test_random_crop_moves_image_heatmap_and_points_together(seed):
    img, heat, corners = _scene()
    tf = SampleTransform(64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), train=True, scale=(0.5, 1.0), seed=seed)
    out = tf.apply(img, heatmap=heat, keypoints=corners, boxes=corners.reshape(1, 4))
    bright = out["image"][0] > 0.5
    hot = out["heatmap"][0] > 0.5
    assert (bright ^ hot).float().mean() < 0.03  # the white square and the heatmap coincide
    (x1, y1), (x2, y2) = out["keypoints"]
    np.testing.assert_allclose(out["boxes"][0], [x1, y1, x2, y2])
    ys, xs = torch.nonzero(hot, as_tuple=True)
    if len(xs):
        assert abs(xs.min().item() - max(x1, 0)) <= 2 and abs(ys.min().item() - max(y1, 0)) <= 2


def test_eval_transform_squashes_whole_frame_and_normalises():
    img, heat, corners = _scene()
    tf = SampleTransform(50, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    out = tf.apply(img, heatmap=heat, keypoints=corners)
    assert out["image"].shape == (3, 50, 50) and out["heatmap"].shape == (1, 50, 50)
    np.testing.assert_allclose(out["keypoints"], [[25, 50 / 3], [37.5, 100 / 3]], rtol=1e-5)
    assert out["image"].min() >= -1.0 - 1e-6 and out["image"].max() <= 1.0 + 1e-6
    assert tf(img).shape == (3, 50, 50) and tf.image_size == (50, 50)


def test_center_crop_mode():
    img, _, corners = _scene()
    tf = SampleTransform(60, (0.0,) * 3, (1.0,) * 3, resize="center_crop")
    out = tf.apply(img, keypoints=corners)
    np.testing.assert_allclose(out["keypoints"][0], [(100 - 40) * 0.5, 40 * 0.5])


def test_heatmap_shape_errors():
    img, _, _ = _scene()
    with pytest.raises(ValueError, match="heatmap must have shape"):
        SampleTransform(32, (0.0,) * 3, (1.0,) * 3).apply(img, heatmap=np.zeros((2, 3, 120, 200)))


class _Crops(torch.utils.data.Dataset):
    def __init__(self, tf):
        self.tf = tf

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(self.tf.crop_box(120, 200))


def test_each_loader_worker_draws_its_own_crops():
    """A transform copied into DataLoader workers must not replay the same random crops in each."""
    tf = SampleTransform(32, (0.0,) * 3, (1.0,) * 3, train=True, scale=(0.3, 1.0), seed=5)
    loader = torch.utils.data.DataLoader(_Crops(tf), batch_size=4, num_workers=2)
    first, second = list(loader)  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(first, second)
    again = torch.cat(list(loader))  # a seed makes the workers' streams reproducible
    torch.testing.assert_close(torch.cat([first, second]), again)
