"""How well a submission's bounds cover the truth: the bounds `predict --interval` stored with it (as
pertnet/outputs.py's format of the file keeps them), matched to the truth as the submission is, and
measured by `intervals.coverage_report`."""
import numpy as np

from pertnet import intervals, outputs, schemas
from pertnet.alignment import align
from pertnet.errors import UserError


def score_intervals(submission_path, truth_path, id_map, layer, pairs, predicted, truth, labels):
    """The coverage report of the submission's bounds, None where it has none. pairs, predicted, truth:
    the submission as `alignment.align` matched it to the truth."""
    fmt = outputs.of_file(submission_path) or outputs.FORMATS[outputs.SUBMISSION]
    stored = fmt.bounds(submission_path)
    if stored is None:
        return None
    lower, upper = (align(path, truth_path, id_map, layer, submission_layer, labels)[1]
                    for path, submission_layer in (stored.lower, stored.upper))
    if (lower > upper).any():
        raise UserError(f"{stored.lower[0]}: {int((lower > upper).sum())} lower bound(s) above their upper bound; "
                        "rerun `python -m predict --interval LEVEL`")
    key = schemas.PAIR if (pairs["cell_type"] != "all").all() else ["id"]
    named = pairs if key == schemas.PAIR else pairs.assign(id=pairs["sm_name"].astype(int))
    uncertainty = named[key].merge(stored.uncertainty, on=key, how="left")["uncertainty"]
    if uncertainty.isna().any():
        raise UserError(f"{submission_path}: its uncertainty scores miss {int(uncertainty.isna().sum())} of the "
                        f"{len(pairs)} pairs; rerun `python -m predict --interval LEVEL`")
    return intervals.coverage_report(lower, upper, truth, predicted, uncertainty.to_numpy(np.float64),
                                     pairs["cell_type"], stored.level)
