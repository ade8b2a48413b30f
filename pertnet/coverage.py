"""How well a submission's bounds cover the truth: the bounds `predict --interval` stored with it (as
pertnet/outputs.py's format of the file keeps them), matched to the truth as the submission is, and
measured a block of rows at a time by `intervals.Coverage`."""
import numpy as np

from pertnet import intervals, outputs, schemas
from pertnet.errors import UserError


class StoredCoverage:
    """The coverage of a submission's stored bounds (`stored`): `files`, the lower and upper bounds matched to
    the truth (pertnet/alignment.py), whose blocks of rows go to `add`; `report` measures them."""

    def __init__(self, submission_path, stored, truth, pairs):
        self.lower_path = stored.lower[0]
        self.files = [truth.match(path, role, layer) for role, (path, layer) in
                      (("lower", stored.lower), ("upper", stored.upper))]
        key = schemas.PAIR if (pairs["cell_type"] != "all").all() else ["id"]
        named = pairs if key == schemas.PAIR else pairs.assign(id=pairs["sm_name"].astype(int))
        uncertainty = named[key].merge(stored.uncertainty, on=key, how="left")["uncertainty"]
        if uncertainty.isna().any():
            raise UserError(f"{submission_path}: its uncertainty scores miss {int(uncertainty.isna().sum())} of the "
                            f"{len(pairs)} pairs; rerun `python -m predict --interval LEVEL`")
        self.uncertainty, self.crossed = uncertainty.to_numpy(np.float64), 0
        self.coverage = intervals.Coverage(len(truth.genes), stored.level)

    def add(self, lower, upper, truth, predicted, cell_types):
        self.crossed += int((lower > upper).sum())
        self.coverage.add(lower, upper, truth, predicted, cell_types)

    def report(self):
        if self.crossed:
            raise UserError(f"{self.lower_path}: {self.crossed} lower bound(s) above their upper bound; "
                            "rerun `python -m predict --interval LEVEL`")
        return self.coverage.report(self.uncertainty)


def stored(submission_path, truth, pairs):
    """The `StoredCoverage` of the submission's bounds matched to `truth` (an `alignment.Truth`), None where it
    has none. pairs: the truth rows' pairs, as the submission was matched."""
    fmt = outputs.of_file(submission_path) or outputs.FORMATS[outputs.SUBMISSION]
    bounds = fmt.bounds(submission_path)
    return None if bounds is None else StoredCoverage(submission_path, bounds, truth, pairs)
