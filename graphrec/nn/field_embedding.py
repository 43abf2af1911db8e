"""Embeddings of an entity's categorical side fields (an item's genres and brand, a user's age)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_field_name(name: Any) -> bool:
    """Whether ``name`` can name a field: an identifier (``brand``, ``release_year``),
    since it names buffers, checkpoint entries and command-line switches."""
    return isinstance(name, str) and _NAME.match(name) is not None


def check_fields(fields: Mapping[str, int] | None, what: str = "fields") -> dict[str, int]:
    """``fields`` as a plain ``{name: largest value id}`` dict, checked.

    Names are identifiers (``brand``, ``release_year``): they name buffers,
    checkpoint entries and command-line switches. Every field needs at least
    one value (ids ``1 .. n``; 0 is "unknown").
    """
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise TypeError(f"{what} must map field names to their number of values, got {fields!r}")
    out: dict[str, int] = {}
    for name, size in fields.items():
        if not is_field_name(name):
            raise ValueError(f"{what}: field name {name!r} is not an identifier")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{what}: field {name!r} needs a number of values >= 1, got {size!r}")
        out[name] = size
    return out


def encode_context(
    context: Mapping[str, Any], sizes: Mapping[str, int], labels: Mapping[str, dict[str, int]]
) -> tuple[dict[str, int], list[str]]:
    """A request's context as value ids, and notes on values it had to read as unknown.

    A field with labels (a click log's own values, ``labels[name]``: value ->
    id) takes those values, compared as text (``"mobile"``; ``9`` for the
    ``hour`` field is the hour 9); a value the training log never showed is
    unknown (0), with a note. A field without labels (MovieLens, the synthetic
    data) takes value ids ``0 .. sizes[name]``. ``None`` is unknown everywhere.

    Raises:
        ValueError: ``context`` is not a mapping, names a field that ``sizes``
            lacks, or gives an unlabelled field something other than a value id
            in range.
    """
    if not isinstance(context, Mapping):
        raise ValueError(f"a context is a dict of field -> value, got {context!r}")
    unknown = sorted(set(context) - set(sizes))
    if unknown:
        raise ValueError(f"unknown context field(s) {unknown}; the model reads {sorted(sizes)}")
    out: dict[str, int] = {}
    notes: list[str] = []
    for key, value in context.items():
        if value is None:
            out[key] = 0
        elif key in labels:
            if isinstance(value, (bool, float, list, dict)):
                raise ValueError(
                    f"context {key!r}: expected one of the log's values, got {value!r}"
                )
            out[key] = labels[key].get(str(value).strip(), 0)
            if not out[key]:
                notes.append(
                    f"context {key!r}: value {value!r} is not among the training log's: unknown"
                )
        else:
            size = sizes[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= size:
                raise ValueError(
                    f"context {key!r}: expected a value id in 0..{size} (0 = unknown), "
                    f"got {value!r}"
                )
            out[key] = value
    return out, notes


def label_index(labels: Mapping[str, Sequence[Any]] | None) -> dict[str, dict[str, int]]:
    """``{field: {value as text: id}}`` of context labels ``{field: [None, value of 1, ...]}``."""
    return {k: {str(v): i for i, v in enumerate(vs) if i} for k, vs in (labels or {}).items()}


class FieldEmbedding(nn.Module):
    r"""The side fields of an entity (items, or users) as vectors, looked up by its id.

    Each field :math:`f` keeps a table :math:`T_f` of value ids per entity,
    ``[num_rows + 1, W_f]``: one column for a single-valued field (a brand),
    several for a multi-valued one (a movie's genres), padded with 0; 0 also
    means "unknown", and row 0 (the padding entity, or the unknown user) holds
    only 0. The tables are static: set once from the data
    (:meth:`set_tables`), saved with the model's weights, so that training,
    evaluation and ``recommend`` read the same values. The vector of entity
    :math:`r` in field :math:`f` is the mean of the value embeddings of its
    non-zero values (DIN's pooling of multi-hot groups, Sec. 4.1 of
    `arXiv:1706.06978 <https://arxiv.org/abs/1706.06978>`_):

    .. math::
        \mathbf{e}^f_r = \frac{1}{\max(1, |V^f_r|)} \sum_{v \in V^f_r} \mathbf{E}^f_v,
        \qquad V^f_r = \{T_f[r, j] \ne 0\}

    so that an entity without a value gets the zero vector (row 0 of every
    :math:`\mathbf{E}^f` is zero and stays so).

    Args:
        num_rows (int): the largest entity id (items ``1 .. num_items``).
        fields (dict): ``{name: largest value id}``, in the order the vectors
            are returned.
        channels (int): size of each field's vectors.

    Shapes:
        - **input:** entity ids of any shape :math:`(*)`
        - **output:** :meth:`forward` a list of :math:`(*, \text{channels})`,
          one per field; :meth:`sum` one :math:`(*, \text{channels})`
    """

    def __init__(self, num_rows: int, fields: Mapping[str, int], channels: int) -> None:
        super().__init__()
        self.num_rows = int(num_rows)
        self.fields = check_fields(fields)
        if not self.fields:
            raise ValueError("FieldEmbedding needs at least one field")
        self.channels = channels
        self.embeddings = nn.ModuleList(
            nn.Embedding(size + 1, channels, padding_idx=0) for size in self.fields.values()
        )
        for i in range(len(self.fields)):
            self.register_buffer(f"table_{i}", torch.zeros(self.num_rows + 1, 1, dtype=torch.long))
        self.reset_parameters()

    @property
    def names(self) -> list[str]:
        return list(self.fields)

    def reset_parameters(self, std: float | None = None) -> None:
        """Value embeddings :math:`\\mathcal{N}(0, \\text{std}^2)` (default: PyTorch's
        :math:`\\mathcal{N}(0, 1)`), row 0 zero. The tables are data, kept."""
        for emb in self.embeddings:
            if std is None:
                emb.reset_parameters()
            else:
                nn.init.normal_(emb.weight, std=std)
            with torch.no_grad():
                emb.weight[0].zero_()

    def tables(self) -> dict[str, Tensor]:
        """``{name: LongTensor [num_rows + 1, W]}``: the value ids of every entity."""
        return {name: getattr(self, f"table_{i}") for i, name in enumerate(self.fields)}

    def set_tables(self, tables: Mapping[str, Tensor]) -> None:
        """Store each field's value ids per entity (``[num_rows + 1]`` or
        ``[num_rows + 1, W]``).

        Raises:
            ValueError: a field is missing or extra, a table has the wrong
                number of rows, a value lies outside ``0 .. size``, or row 0
                is not all 0.
        """
        missing = set(self.fields) - set(tables)
        extra = set(tables) - set(self.fields)
        if missing or extra:
            raise ValueError(
                f"field tables for {sorted(tables)}, the model has {self.names}"
                + (f" (missing {sorted(missing)})" if missing else "")
            )
        for i, (name, size) in enumerate(self.fields.items()):
            table = torch.as_tensor(tables[name])
            if table.is_floating_point() or table.dtype == torch.bool:
                raise ValueError(f"field {name!r}: value ids must be integers, got {table.dtype}")
            table = table.long()
            if table.dim() == 1:
                table = table.unsqueeze(1)
            if table.dim() != 2 or table.size(0) != self.num_rows + 1 or table.size(1) < 1:
                raise ValueError(
                    f"field {name!r}: a table of {self.num_rows + 1} rows is needed, "
                    f"got shape {tuple(table.shape)}"
                )
            if table.numel() and (int(table.min()) < 0 or int(table.max()) > size):
                raise ValueError(
                    f"field {name!r}: values must lie in 0..{size}, got "
                    f"{int(table.min())}..{int(table.max())}"
                )
            if bool(table[0].any()):
                raise ValueError(f"field {name!r}: row 0 (padding / unknown) must hold only 0")
            device = getattr(self, f"table_{i}").device
            setattr(self, f"table_{i}", table.to(device))

    def forward(self, ids: Tensor) -> list[Tensor]:
        out = []
        for i, emb in enumerate(self.embeddings):
            values = getattr(self, f"table_{i}")[ids]  # [*, W]
            if values.size(-1) == 1:
                out.append(emb(values.squeeze(-1)))
                continue
            # the mean over the non-zero values, without a [*, W, d] intermediate
            flat = F.embedding_bag(
                values.reshape(-1, values.size(-1)), emb.weight, mode="mean", padding_idx=0
            )
            out.append(flat.view(*values.shape[:-1], emb.embedding_dim))
        return out

    def sum(self, ids: Tensor) -> Tensor:
        """``[*, channels]``: the fields' vectors summed."""
        vectors = self(ids)
        total = vectors[0]
        for v in vectors[1:]:
            total = total + v
        return total

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # a table's width (the most values an entity has) is data: take the stored one
        for i in range(len(self.fields)):
            stored = state_dict.get(f"{prefix}table_{i}")
            current = getattr(self, f"table_{i}")
            if stored is not None and stored.shape != current.shape and stored.dim() == 2:
                setattr(self, f"table_{i}", current.new_zeros(stored.shape))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def __repr__(self) -> str:
        widths = [getattr(self, f"table_{i}").size(1) for i in range(len(self.fields))]
        parts = [
            f"{n}={s}" + (f"x{w}" if w > 1 else "")
            for (n, s), w in zip(self.fields.items(), widths, strict=True)
        ]
        return (
            f"{type(self).__name__}({self.num_rows}, {', '.join(parts)}, channels={self.channels})"
        )
