"""The memory estimate of pertnet/memory.py: what it counts, and how it caps the folds trained
side by side in cross-validation."""
import dataclasses

from pertnet import defaults, memory
from pertnet.entries import stage_entries

GB = memory.GB


def test_the_estimate_grows_with_the_widths_and_the_rows():
    (entry,) = stage_entries("simple")
    wider = dataclasses.replace(entry, dense_1=entry.dense_1 * 4)
    assert memory.model_bytes(wider, 600, 150) > memory.model_bytes(entry, 600, 150)
    assert memory.model_bytes(entry, 6000, 150) > memory.model_bytes(entry, 600, 150)


def test_folds_side_by_side_stay_within_the_budget(monkeypatch):
    (entry,) = stage_entries("simple", reps=1)
    one = memory.model_bytes(entry, 600, 150)
    monkeypatch.setattr(memory, "held_bytes", lambda: 0)
    monkeypatch.setattr(defaults, "MEMORY_BUDGET_GB", 2.5 * one / (1 - memory.KEPT_AFTER_TRAINING) / GB)  # room: 2.5 models
    assert memory.side_by_side(entry, 600, 150, folds=4) == 2
    assert memory.side_by_side(entry, 600, 150, folds=4, share=0.5) == 1
    monkeypatch.setattr(defaults, "MEMORY_BUDGET_GB", 0)
    assert memory.side_by_side(entry, 600, 150, folds=4) == 1  # at least one
    monkeypatch.setattr(defaults, "MEMORY_BUDGET_GB", 100)
    assert memory.side_by_side(entry, 600, 150, folds=4) == 4


def test_an_entry_that_does_not_fit_is_named_with_its_estimate_and_what_is_free(monkeypatch):
    (entry,) = stage_entries("simple")
    monkeypatch.setattr(memory, "held_bytes", lambda: 0)
    monkeypatch.setattr(memory, "machine_bytes", lambda: memory.model_bytes(entry, 600, 150) * entry.reps - 1)
    reason = memory.unfit([entry], 600, 150)
    assert reason.startswith("entry 7 would need about ") and "this machine has free" in reason
    monkeypatch.setattr(memory, "machine_bytes", lambda: memory.model_bytes(entry, 600, 150) * entry.reps)
    assert memory.unfit([entry], 600, 150) is None
