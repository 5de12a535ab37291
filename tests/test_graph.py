"""Triple graph convolution and the box / mask heads."""

import pytest
import torch

from sg2img.graph import BoxHead, GraphTripleConv, GraphTripleConvNet, MaskHead, build_mlp


def test_triple_conv_shapes_and_message_passing():
    torch.manual_seed(0)
    conv = GraphTripleConv(6, 10, hidden_dim=12)
    obj_vecs, pred_vecs = torch.randn(4, 6), torch.randn(2, 6)
    edges = torch.tensor([[0, 1], [2, 1]])           # object 3 is in no triple
    new_obj, new_pred = conv(obj_vecs, pred_vecs, edges)
    assert new_obj.shape == (4, 10) and new_pred.shape == (2, 10)
    # An isolated object pools nothing: its vector does not depend on its input.
    obj_vecs2 = obj_vecs.clone()
    obj_vecs2[3] += 5
    assert torch.equal(conv(obj_vecs2, pred_vecs, edges)[0][3], new_obj[3])
    # Object 1 hears from both triples: changing object 2 changes object 1's vector.
    obj_vecs3 = obj_vecs.clone()
    obj_vecs3[2] += 1
    assert not torch.allclose(conv(obj_vecs3, pred_vecs, edges)[0][1], new_obj[1])


def test_triple_conv_with_no_triples():
    conv = GraphTripleConv(4, 4, hidden_dim=8)
    obj, pred = conv(torch.randn(3, 4), torch.zeros(0, 4), torch.zeros(0, 2, dtype=torch.long))
    assert obj.shape == (3, 4) and pred.shape == (0, 4)


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_conv_net_depth_and_gradients(layers):
    net = GraphTripleConvNet(6, 8, 16, layers)
    obj = torch.randn(5, 6, requires_grad=True)
    pred = torch.randn(3, 6)
    edges = torch.tensor([[0, 1], [1, 2], [3, 4]])
    o, p = net(obj, pred, edges)
    assert o.shape == (5, 8) and p.shape == (3, 8)
    (o.sum() + p.sum()).backward()
    assert obj.grad.abs().sum() > 0
    for name, prm in net.named_parameters():
        assert prm.grad is not None, name


def test_box_head_boxes_are_valid_even_for_extreme_inputs():
    head = BoxHead(4, 8)
    vecs = torch.cat([torch.randn(50, 4), 1e4 * torch.randn(50, 4)])
    boxes = head(vecs)
    assert boxes.shape == (100, 4)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert ((boxes[:, 2] - boxes[:, 0]) >= head.min_size - 1e-6).all()


@pytest.mark.parametrize("size", [8, 16, 32])
def test_mask_head_shapes(size):
    head = MaskHead(16, size)
    logits = head(torch.randn(3, 16))
    assert logits.shape == (3, size, size)
    logits.sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_build_mlp_rejects_single_width():
    with pytest.raises(ValueError, match="at least"):
        build_mlp([3])


def test_importing_the_model_does_not_warn_about_torch_jit_script():
    """torch-geometric's import warns that torch.jit.script is deprecated; sg2img keeps that
    from its users (every command and script printed it)."""
    import subprocess
    import sys

    code = "import sg2img.model, sg2img.layout_head, sg2img.graph"
    out = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "jit" not in out.stderr
