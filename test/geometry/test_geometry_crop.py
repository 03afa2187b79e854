"""Square crops, crop parameters and patch grids (raydiff_ros.geometry.crop)."""

import math

import pytest
import torch

from raydiff_ros.geometry import crop
from raydiff_ros.geometry.checks import GeometryInputError

CROP_ATOL = 1e-6


def test_square_crop_box_hand_value():
    """bbox 10 x 20 at the origin, scale 1: square of side 20 centred on (5, 10)."""
    box = crop.square_crop_box(torch.tensor([0, 0, 10, 20]), scale=1.0)
    assert box.tolist() == [-5, 0, 15, 20]
    assert box.dtype == torch.int64


def test_square_crop_box_rounds_half_to_even():
    """Corners at exactly .5 round to the even integer (numpy/official behaviour)."""
    assert crop.square_crop_box(torch.tensor([1, 1, 2, 2]), scale=2.0).tolist() == [0, 0, 2, 2]
    assert crop.square_crop_box(torch.tensor([2, 2, 3, 3]), scale=2.0).tolist() == [2, 2, 4, 4]


def test_square_crop_box_reproduces_official_demo_crops(official):
    """Demo crop of the fixture's bboxes (scale 1.15): identical integer boxes."""
    boxes = crop.square_crop_box(official['bboxes_xyxy'])
    assert torch.equal(boxes, official['crop_boxes_xyxy'].to(torch.int64))


def test_crop_parameters_reproduce_official_formulas(official):
    """Training and demo formulas from the raw fixture inputs; met atol 1e-6."""
    boxes = official['crop_boxes_xyxy']
    sizes = official['image_sizes_wh']
    torch.testing.assert_close(
        crop.crop_parameters(boxes, sizes), official['crop_params_trainformula'],
        atol=CROP_ATOL, rtol=0,
    )
    torch.testing.assert_close(
        crop.crop_parameters_demo(boxes, official['bboxes_xyxy'], sizes), official['crop_params'],
        atol=CROP_ATOL, rtol=0,
    )


def test_demo_quirk_offsets_the_short_axis_by_aspect_minus_one(official):
    """Quirk 1 of the demo formula: on the short (x) axis of a portrait image the negated crop
    centre is off by -(s - 1) NDC; the long axis agrees."""
    boxes = official['crop_boxes_xyxy']
    sizes = official['image_sizes_wh']
    train = crop.crop_parameters(boxes, sizes)
    demo = crop.crop_parameters_demo(boxes, official['bboxes_xyxy'], sizes)
    aspect = 800 / 600
    torch.testing.assert_close(demo[:, 0] - train[:, 0], torch.full((2,), 1 - aspect))
    torch.testing.assert_close(demo[:, 1], train[:, 1])


def test_ndc_grid_reproduces_official_grid(official):
    """ndc_grid(crop_params) equals the fixture's 'ndc' (channel 0 = x', 1 = y'); atol 1e-6."""
    grid = crop.ndc_grid(official['crop_params'])
    torch.testing.assert_close(
        grid.permute(0, 3, 1, 2), official['ndc'][0], atol=CROP_ATOL, rtol=0
    )


def test_full_square_grid_hand_values():
    """No crop: top-left (0.9375, 0.9375), top-right (-0.9375, 0.9375), bottom-left
    (0.9375, -0.9375), step 0.125; flat index p = 16 i + j."""
    grid = crop.ndc_grid()
    assert grid.shape == (16, 16, 2)
    torch.testing.assert_close(grid[0, 0], torch.tensor([0.9375, 0.9375]))
    torch.testing.assert_close(grid[0, 15], torch.tensor([-0.9375, 0.9375]))
    torch.testing.assert_close(grid[15, 0], torch.tensor([0.9375, -0.9375]))
    torch.testing.assert_close(grid[0, 1] - grid[0, 0], torch.tensor([-0.125, 0.0]))
    flat = crop.ndc_grid(flatten=True)
    assert flat.shape == (256, 2)
    torch.testing.assert_close(flat[16 * 3 + 5], grid[3, 5])


def test_crop_grid_hand_values():
    """x' = u * w / 2 - cp[0], y' = v * w / 2 - cp[1] for cp = (0.1, -0.2, 1, 1), P = 4."""
    grid = crop.ndc_grid(torch.tensor([0.1, -0.2, 1.0, 1.0]), num_patches=4)
    torch.testing.assert_close(grid[0, 0], torch.tensor([0.75 * 0.5 - 0.1, 0.75 * 0.5 + 0.2]))
    torch.testing.assert_close(grid[3, 2], torch.tensor([-0.25 * 0.5 - 0.1, -0.75 * 0.5 + 0.2]))


def test_training_parameters_hand_value_and_pixel_grid_hits_patch_centres():
    """640 x 480 image, crop [100, 50, 340, 290]: parameters by hand, and the pixel grid lies
    at the centres of the 16 x 16 patches of that crop (15-pixel patches)."""
    box = torch.tensor([100.0, 50.0, 340.0, 290.0], dtype=torch.float64)
    params = crop.crop_parameters(box, (640, 480))
    torch.testing.assert_close(
        params, torch.tensor([-200 / 480, -140 / 480, 1.0, 4 / 3], dtype=torch.float64)
    )
    pixels = crop.pixel_grid(params, (640, 480))
    centres = torch.arange(16, dtype=torch.float64) * 15 + 7.5
    torch.testing.assert_close(pixels[..., 0], (100 + centres).expand(16, 16))
    torch.testing.assert_close(pixels[..., 1], (50 + centres[:, None]).expand(16, 16))


def test_full_square_pixel_grid_on_landscape_image():
    """No crop on 640 x 480: the grid covers the centred 480 x 480 square (30-pixel patches)."""
    pixels = crop.pixel_grid(None, torch.tensor([640.0, 480.0], dtype=torch.float64))
    assert pixels.dtype == torch.float64
    torch.testing.assert_close(pixels[0, 0], torch.tensor([95.0, 15.0], dtype=torch.float64))
    torch.testing.assert_close(pixels[15, 15], torch.tensor([545.0, 465.0], dtype=torch.float64))


def test_crop_box_from_parameters_inverts_training_formula(official):
    boxes = official['crop_boxes_xyxy'].to(torch.float64)
    params = crop.crop_parameters(boxes, official['image_sizes_wh'])
    torch.testing.assert_close(
        crop.crop_box_from_parameters(params, official['image_sizes_wh']), boxes
    )


def test_batched_grid_shapes():
    params = torch.tensor([0.0, 0.0, 2.0, 1.0]).expand(3, 2, 4)
    assert crop.ndc_grid(params).shape == (3, 2, 16, 16, 2)
    assert crop.pixel_grid(params, (64, 64), num_patches=8, flatten=True).shape == (3, 2, 64, 2)


@pytest.mark.parametrize(
    'call, message',
    [
        (lambda: crop.square_crop_box(torch.tensor([5, 0, 5, 10])), 'x1 > x0'),
        (lambda: crop.square_crop_box(torch.tensor([0, 0, 5])), 'shape'),
        (lambda: crop.square_crop_box(torch.tensor([0, 0, 5, 5]), scale=0.0), 'scale'),
        (lambda: crop.ndc_grid(torch.tensor([0.0, 0.0, 0.0, 1.0])), 'crop_width'),
        (lambda: crop.ndc_grid(torch.tensor([0.0, math.nan, 1.0, 1.0])), 'non-finite'),
        (lambda: crop.ndc_grid(num_patches=0), 'num_patches'),
        (lambda: crop.crop_parameters(torch.tensor([0, 0, 5, 5]), (0, 10)), 'positive'),
        (lambda: crop.crop_parameters(torch.tensor([0, 0, 5, 5]).expand(2, 4), torch.ones(3, 2)),
         'broadcast'),
    ],
)
def test_bad_crop_input_raises(call, message):
    with pytest.raises(GeometryInputError, match=message):
        call()
