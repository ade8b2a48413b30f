"""The label vocabulary: each (cell_type, sm_name) pair becomes two integers (sm_name: the perturbation
label, a compound or a combination such as "Dabrafenib | dose=0.1", pertnet/labels.py)."""
import difflib

import numpy as np

from pertnet.errors import UserError


class Vocabulary:
    """One sorted vocabulary over cell types and compounds (what LabelEncoder fitted on both gives)."""

    def fit(self, cell_types, compounds):
        self.labels_ = sorted({str(label) for label in (*cell_types, *compounds)})
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
            shown = "; ".join(f"({c!r}, {s!r})" for c, s in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            hints = [self.hint(label) for label in
                     dict.fromkeys(label for pair in unknown for label in pair if label not in self._index)
                     if self.hint(label)]
            hint = f" ({'; '.join(hints[:3])})" if hints else ""
            raise UserError(f"{source}: {len(unknown)} pair(s) have a cell type or perturbation that never "
                            f"occurs in the training data: {shown}{more}{hint}; the networks learn one embedding "
                            "per training label, so an unseen label cannot be predicted: fix the label, add "
                            "training rows with it (any pair), or remove the pairs")
        return np.array([[self._index[c], self._index[s]] for c, s in zip(cell_types, compounds)],
                        dtype=np.int32).reshape(-1, 2)

    def hint(self, label):
        """What an unknown label most likely means, for the message ("" where nothing is near): the one known
        label it differs from by case, spacing or a typo; for a combination (a compound and its dose), the known
        combinations of the same compound."""
        if " | " in label:
            head = label.split(" | ")[0] + " | "
            seen = [known for known in self.labels_ if known.startswith(head)]
            if seen:
                return f"{label!r}: the training data has {', '.join(map(repr, seen[:4]))}" + \
                    (f" and {len(seen) - 4} more" if len(seen) > 4 else "")
        match = self.near_match(label)
        return f"{label!r} is probably {match!r}" if match else ""

    def near_match(self, label):
        """The known label `label` most likely means (other case or spacing, a small typo), or None."""
        canonical = {" ".join(known.split()).casefold(): known for known in self.labels_}
        same = canonical.get(" ".join(label.split()).casefold())
        return same or next(iter(difflib.get_close_matches(label, self.labels_, n=1, cutoff=0.9)), None)

    def __len__(self):
        return len(self.labels_)
