import torch

from graphrec.data import collate, dense_adjacency, session_graph
from graphrec.nn import SRGNNConv


def dense_step(conv, h, a_in, a_out):
    """Eq. (1)-(5) of the SR-GNN paper with dense matrices, written out gate by gate."""
    w_ih, w_hh, b_ih, b_hh = (
        conv.gru.weight_ih,
        conv.gru.weight_hh,
        conv.gru.bias_ih,
        conv.gru.bias_hh,
    )
    a = torch.cat(
        [
            a_in @ (h @ conv.lin_in.weight.t() + conv.lin_in.bias) + conv.bias_in,
            a_out @ (h @ conv.lin_out.weight.t() + conv.lin_out.bias) + conv.bias_out,
        ],
        dim=1,
    )
    gi, gh = a @ w_ih.t() + b_ih, h @ w_hh.t() + b_hh
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)  # reset gate
    z = torch.sigmoid(i_z + h_z)  # update gate
    n = torch.tanh(i_n + r * h_n)  # candidate
    return (1 - z) * n + z * h


def test_equals_dense_reference():
    torch.manual_seed(0)
    conv = SRGNNConv(8)
    sessions = [[1, 2, 3, 2, 4], [5, 5, 6], [7], [1, 2, 1, 3, 1, 2]]
    graphs = [session_graph(s, weighting="count") for s in sessions]
    batch = collate(graphs)
    h = torch.randn(batch.num_nodes, 8)
    out = conv(h, batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
    assert out.shape == (batch.num_nodes, 8)
    for i, g in enumerate(graphs):
        a_in, a_out = dense_adjacency(g)
        nodes = slice(int(batch.ptr[i]), int(batch.ptr[i + 1]))
        expected = dense_step(conv, h[nodes], a_in, a_out)
        assert torch.allclose(out[nodes], expected, atol=1e-6)


def test_sum_aggregation_equals_pyg_scatter_with_gradients():
    # the index_add_ aggregation against MessagePassing's own (scatter) one
    from torch_geometric.nn import MessagePassing

    class PyGSum(SRGNNConv):
        def aggregate(self, inputs, index, ptr=None, dim_size=None):
            return MessagePassing.aggregate(self, inputs, index, ptr=ptr, dim_size=dim_size)

    torch.manual_seed(3)
    conv = SRGNNConv(6)
    ref = PyGSum(6)
    ref.load_state_dict(conv.state_dict())
    batch = collate([session_graph(s, weighting="count") for s in [[1, 2, 1, 3], [4], [5, 6]]])
    h = torch.randn(batch.num_nodes, 6, requires_grad=True)
    h_ref = h.detach().clone().requires_grad_()
    args = (batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
    out, expected = conv(h, *args), ref(h_ref, *args)
    assert torch.allclose(out, expected, atol=1e-6)
    out.pow(2).sum().backward()
    expected.pow(2).sum().backward()
    assert torch.allclose(h.grad, h_ref.grad, atol=1e-6)
    for p, q in zip(conv.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    # other aggregations are PyG's own
    mean = SRGNNConv(6, aggr="mean")
    inputs, index = torch.arange(6.0).view(3, 2), torch.tensor([0, 0, 2])
    agg = mean.aggregate(inputs, index, dim_size=3)
    assert torch.equal(agg, torch.tensor([[1.0, 2.0], [0.0, 0.0], [4.0, 5.0]]))
    expected = torch.tensor([[2.0, 4.0], [0.0, 0.0], [4.0, 5.0]])
    assert torch.equal(conv.aggregate(inputs, index), expected)


def test_missing_edge_weight_means_ones():
    torch.manual_seed(1)
    conv = SRGNNConv(4)
    g = session_graph([1, 2, 3])
    h = torch.randn(3, 4)
    ones = torch.ones(g.edge_index.size(1))
    assert torch.allclose(conv(h, g.edge_index), conv(h, g.edge_index, ones, ones))


def test_repr_and_reset():
    conv = SRGNNConv(16)
    assert str(conv) == "SRGNNConv(16)"
    conv.reset_parameters()
    assert all(p.abs().max() <= 0.25 + 1e-6 for p in conv.parameters())
