"""The one output comparison the tests use (tests/helpers.py::assert_outputs_close): it passes float32 rounding
of a deep network at any thread count and fails a genuine error."""
import pytest
import torch
from torchvision import models

from helpers import MAX_RELATIVE, assert_outputs_close, depth_of, output_tolerance


def _resnet50():
    torch.manual_seed(0)
    return models.resnet50(weights=None).eval()


def test_depth_counts_convolutions_and_linear_layers():
    assert depth_of(_resnet50()) == 53 + 1
    assert depth_of(torch.nn.ReLU()) == 1


def test_the_tolerance_is_relative_to_the_outputs_and_grows_with_depth():
    want = torch.tensor([[-3.0, 1.0, 2.0]])
    assert output_tolerance(want, 10) == pytest.approx(1e-5 * 3.0)
    assert output_tolerance(want * 100, 10) == pytest.approx(1e-5 * 300.0)
    assert output_tolerance(want, 10_000) == pytest.approx(MAX_RELATIVE * 3.0)  # never looser than that


@pytest.mark.timeout(300)
def test_one_and_two_threads_agree_and_a_genuine_error_of_1e_2_fails():
    net = _resnet50()
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = net(x)
            torch.set_num_threads(2)
            two = net(x)
    finally:
        torch.set_num_threads(threads)
    assert_outputs_close(two, one, depth_of(net))
    scale = float(one.abs().max())
    for where in ((0, 0), (1, 287)):
        wrong = one.clone()
        wrong[where] += 1e-2 * scale
        with pytest.raises(AssertionError, match=r"differ by .* at \(" + f"{where[0]}, {where[1]}" + r"\)"):
            assert_outputs_close(wrong, one, depth_of(net))
    wrong = one.clone()
    wrong[0, 3] = float("nan")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_outputs_close(wrong, one, depth_of(net))
    with pytest.raises(AssertionError, match="shape"):
        assert_outputs_close(one[:1], one, depth_of(net))
