"""Typed entries: the stage table's plain dicts, checked once, as a small frozen type.

An entry is one network of a stage's ensemble (docs/method.md, sections 3 and 6). The stage table
(pertnet/defaults.py; the command line's config.py) keeps the original solution's names (`bs`,
`emb_out`, `dense_1`, ...) as plain values; `Entry` checks that an entry has exactly the fields its
family uses, each of the right type and range, wherever it comes from (the table, a stages file, a
notebook).
"""
import dataclasses
import json
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from pertnet import defaults
from pertnet.errors import UserError
from pertnet.architectures import FAMILIES, HIDDEN_FIELDS
from pertnet.files import write_text



@dataclass(frozen=True)
class Entry:
    """One entry of a stage: which network, how it trains, and its weight in the ensemble."""

    id: str              # the entry's name (stage_2: family digit + letter)
    architecture: int    # family 1-8
    weight: float        # its weight in the stage's weighted mean over entries
    reps: int            # independently seeded models; their median is the entry's prediction
    epochs: int
    bs: int              # batch size
    lr: float            # Adam's learning rate
    emb_out: int         # width of the label embedding
    n_dim: int           # truncated-SVD components the network predicts
    dense_1: int = None  # widths of the hidden Dense layers, where the family has them
    dense_2: int = None
    dense_3: int = None
    dense_4: int = None
    dropout_1: float = None  # dropout rates after the hidden blocks, where the family has them
    dropout_2: float = None
    dropout_3: float = None
    dropout_4: float = None

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty text, got {self.id!r}")
        if isinstance(self.architecture, bool) or self.architecture not in FAMILIES:
            raise ValueError(f"architecture must be a family 1-8, got {self.architecture!r}")
        used = FAMILIES[self.architecture].fields
        for name in HIDDEN_FIELDS:
            if (getattr(self, name) is None) == (name in used):
                raise ValueError(f"{name} is missing" if name in used else f"{name} is not a hyperparameter of "
                                 f"family {self.architecture} (its own: {', '.join(used) or 'none'})")
        for name, value in self.as_dict().items():
            if name in ("id", "architecture"):
                continue
            number = isinstance(value, Real) and not isinstance(value, bool)
            if name in ("weight", "lr") or name.startswith("dropout_"):
                low, high = (0, 1) if name.startswith("dropout_") else (0, float("inf"))
                if not number or not low <= value < high or (name == "lr" and value == 0):
                    rule = "in [0, 1)" if high == 1 else ("> 0" if name == "lr" else ">= 0")
                    raise ValueError(f"{name} must be a number {rule}, got {value!r}")
            elif not (number and isinstance(value, Integral) and value > 0):
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")

    @classmethod
    def from_dict(cls, values, source):
        """An entry from plain values (config.py, a stages file); a bad field is a UserError naming `source`."""
        name = f"{source}: entry {values.get('id', '?')!r}" if isinstance(values, dict) else source
        if not isinstance(values, dict):
            raise UserError(f"{name}: an entry must be a mapping of hyperparameters, got {type(values).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{name}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(f.name for f in dataclasses.fields(cls))}")
        try:
            return cls(**values)
        except TypeError:  # a required field absent
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and f.name not in HIDDEN_FIELDS]
            raise UserError(f"{name}: missing field(s) {', '.join(missing)}") from None
        except ValueError as error:
            raise UserError(f"{name}: {error}") from None

    def as_dict(self):
        """The plain values, as config.py writes them (the fields the family uses, in field order)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def with_overrides(self, reps=None, epochs=None):
        """The entry with --reps / --epochs applied (None keeps the configured value)."""
        given = {k: v for k, v in dict(reps=reps, epochs=epochs).items() if v is not None}
        return dataclasses.replace(self, **given) if given else self


def stage_entries(stage, reps=None, epochs=None, ids=None, stages_file=None, table=None):
    """The stage's entries, from a stages file (`read_stages`) where it names the stage, else from
    `table` ({stage: [plain entry, ...]}: the CLI's config.py; None: the package's pertnet/defaults.py),
    with --reps / --epochs applied.

    ids: keep only these entries, in the stage's order (benchmarks/bench.py's --entries).
    """
    entries = read_stages(stages_file).get(stage) if stages_file is not None else None
    if entries is None:
        source = "pertnet/defaults.py" if table is None else "config.py"
        entries = _checked(stage, (defaults.STAGES if table is None else table)[stage], f"{source}, stage {stage}")
    if ids is not None:
        unknown = sorted(set(ids) - {e.id for e in entries})
        if unknown:
            raise UserError(f"stage {stage} has no entries {', '.join(unknown)}; "
                            f"its entries are {', '.join(e.id for e in entries)}")
        entries = [e for e in entries if e.id in ids]
    return [e.with_overrides(reps, epochs) for e in entries]


def departure(stage, reps=None, epochs=None):
    """The log line of a run whose reps / epochs override every entry's ("" where neither does)."""
    given = " ".join(f"--{k} {v}" for k, v in dict(reps=reps, epochs=epochs).items() if v is not None)
    return given and (f"[{stage}] departing from the faithful configuration: {given} overrides every entry "
                      "(a quick look, not a reproduction)")


def read_stages(path):
    """A stages file (what `python -m tune` writes; --stages): JSON {stage: [entry, ...]} in config.py's
    form. A stage it does not name keeps config.py's entries."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (--stages)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a JSON stages file ({error}); write it as python -m tune does") from None
    if not isinstance(values, dict) or not values:
        raise UserError(f"{path}: a stages file maps stage names ({', '.join(defaults.STAGES)}) to lists of entries")
    unknown = sorted(set(values) - set(defaults.STAGES))
    if unknown:
        raise UserError(f"{path}: unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(defaults.STAGES)}")
    return {stage: _checked(stage, entries, f"{path}, stage {stage}") for stage, entries in values.items()}


def _checked(stage, values, source):
    """A stage's entries, each checked; the stage as a whole needs distinct ids and some weight."""
    if not isinstance(values, list) or not values:
        raise UserError(f"{source}: a stage is a non-empty list of entries")
    entries = [Entry.from_dict(v, source) for v in values]
    repeated = sorted({e.id for e in entries if [f.id for f in entries].count(e.id) > 1})
    if repeated:
        raise UserError(f"{source}: entry id(s) {', '.join(repeated)} occur more than once")
    if sum(e.weight for e in entries) <= 0:
        raise UserError(f"{source}: the entries' weights sum to 0; the weighted mean needs some weight")
    return entries


def write_stages(path, stages):
    """Write {stage: [Entry, ...]} as a stages file that --stages reads back."""
    write_text(path, json.dumps({stage: [e.as_dict() for e in entries] for stage, entries in stages.items()},
                                indent=1) + "\n")
