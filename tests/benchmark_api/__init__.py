"""The Open Problems benchmark's interface, as copied into this folder (see each JSON file's "source"),
and the one check of an AnnData object against its file formats."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
METHOD = json.loads((HERE / "method_arguments.json").read_text())
FORMATS = json.loads((HERE / "file_formats.json").read_text())


def _has_type(value, kind):
    """Whether an obs column, layer or uns value holds the spec's type (strings may be categorical)."""
    if kind == "dataframe":
        return isinstance(value, pd.DataFrame)
    if isinstance(value, str):
        return kind == "string"
    dtype = value.cat.categories.dtype if isinstance(value.dtype, pd.CategoricalDtype) else value.dtype
    return {"string": dtype == object or pd.api.types.is_string_dtype(dtype),
            "boolean": dtype == np.bool_,
            "double": dtype == np.float64}[kind]


def problems(adata, format_name):
    """What in `adata` breaks FORMATS[format_name]: a required field missing, or a field of another type."""
    found = []
    for slot, fields in FORMATS[format_name].items():
        present = {"obs": adata.obs, "layers": adata.layers, "uns": adata.uns}[slot]
        for field in fields:
            name, kind = field["name"], field["type"]
            if name not in present:
                found += [f"{slot}/{name} missing"] if field["required"] else []
            elif not _has_type(present[name], kind):
                found.append(f"{slot}/{name} is not {kind}")
    return found
