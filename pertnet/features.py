"""The label vocabulary: each (cell_type, sm_name) pair becomes two integers."""
import numpy as np

from pertnet import UserError


class Vocabulary:
    """One sorted vocabulary over cell types and compounds (what LabelEncoder fitted on both gives)."""

    def fit(self, cell_types, compounds):
        self.labels_ = sorted(set(cell_types) | set(compounds))
        self._index = {label: i for i, label in enumerate(self.labels_)}
        return self

    @classmethod
    def from_labels(cls, labels):
        return cls().fit(labels, [])

    def transform(self, cell_types, compounds, source="id_map"):
        """Encode pairs as an (n, 2) int32 array; unknown labels are an error listing the pairs."""
        cell_types, compounds = list(cell_types), list(compounds)
        unknown = [(c, s) for c, s in zip(cell_types, compounds)
                   if c not in self._index or s not in self._index]
        if unknown:
            shown = "; ".join(f"({c}, {s})" for c, s in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UserError(f"{source}: {len(unknown)} pair(s) have a cell type or compound that never "
                            f"occurs in the training data: {shown}{more}; remove them or add training rows for them")
        return np.array([[self._index[c], self._index[s]] for c, s in zip(cell_types, compounds)],
                        dtype=np.int32).reshape(-1, 2)

    def __len__(self):
        return len(self.labels_)
