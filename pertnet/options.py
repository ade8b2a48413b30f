"""What a command was asked to do, as one object: `pertnet.cli` builds it from the command line."""
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pertnet import defaults, outputs
from pertnet.entries import stage_entries
from pertnet.labels import Labels


@dataclass(frozen=True)
class Options:
    stage: str                                # simple, stage_1 or stage_2
    data_dir: Path = Path("data")             # input files, and prepared/ (the CLI's defaults: config.py)
    models_dir: Path = Path("models")         # models/<stage>/: trained bundles
    submissions_dir: Path = Path("submissions")
    seed: int = defaults.SEED                 # base seed of the row shuffle and of every rep
    reps: int = None                          # --reps / --epochs: override every entry (None: as configured)
    epochs: int = None
    force: bool = False                       # retrain entries whose bundle is up to date
    train_file: Path = None                   # de_train.parquet or .h5ad (None: found in data_dir)
    layer: str = None                         # the h5ad layer of the targets (None: sign_log10_pval)
    output_format: str = outputs.SUBMISSION   # a row of pertnet/outputs.py: csv (the submission) or h5ad
    interval: float = None                    # --interval: also write bounds at this coverage level
    stages_file: Path = None                  # --stages: entries from this file (python -m tune's), not config.py
    stages: dict = None                       # the stage table (config.py's STAGES; None: pertnet/defaults.py)
    demo: bool = False                        # data_dir holds the synthetic demo dataset, generated on first use
    labels: Labels = None                     # the label columns (pertnet/labels.py); None: as the models recorded
                                              # them where there are models, else the competition's
    workers: int = None                       # --workers: train on a local Dask cluster of this many processes
    cluster: str = None                       # --cluster: train on the Dask scheduler at this address

    def __post_init__(self):
        for name in ("data_dir", "models_dir", "submissions_dir", "train_file", "stages_file"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))

    def entries(self):
        """The stage's typed entries (config.py's or --stages'), with --reps / --epochs applied."""
        return stage_entries(self.stage, self.reps, self.epochs, stages_file=self.stages_file, table=self.stages)

    def configuration(self):
        """Where the entries come from, as bundles record it."""
        return (str(self.stages_file) if self.stages_file is not None
                else "pertnet/defaults.py" if self.stages is None else "config.py")

    def label_columns(self):
        """The label columns asked for, or the competition's."""
        return self.labels or Labels()

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
