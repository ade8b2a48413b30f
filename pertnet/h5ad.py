"""AnnData (.h5ad) input and output: the Open Problems perturbation-prediction benchmark's format.

The training / truth files (schemas.H5AD_TRAIN) and the prediction file (schemas.H5AD_PREDICTION).
Only the obs, var and the one layer asked for are read: no second dense copy of the targets.
"""
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from pertnet.errors import UserError
from pertnet import labels, tablefile
from pertnet.files import atomic_path

DEFAULT_LAYER = "sign_log10_pval"
CLIPPED_LAYER = "clipped_sign_log10_pval"
METHOD_ID = "nn_retraining_with_pseudolabels"  # the method's id in the Open Problems benchmark


def observation_blocks(path, layer=None):
    """(obs frame, genes, float32 values of `layer` as an iterator of (genes: a slice, values) blocks of genes
    (pertnet/tablefile.py's size), dataset_id or None) of an h5ad file; layer: default `prediction` in a
    prediction file, else sign_log10_pval. The values are read as they are asked for, never held whole: a
    dense or a CSC layer by its genes; a CSR layer, stored by rows, first a window of rows at a time into a
    gene-order table in the system's temporary folder (removed when the blocks are done)."""
    from anndata.io import read_elem

    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as error:
        raise UserError(f"{path}: not a readable h5ad file ({error})") from None
    with handle:
        for group in ("obs", "var"):
            if group not in handle:
                raise UserError(f"{path}: no '{group}' group; is this an AnnData .h5ad file?")
        layers = list(handle["layers"]) if "layers" in handle else []
        layer = layer or ("prediction" if "prediction" in layers else DEFAULT_LAYER)
        if layer not in layers:
            raise UserError(f"{path}: no layer '{layer}'; layers present: {', '.join(layers) or 'none'}; "
                            "choose one with --layer")
        obs, genes, _, dataset_id = _plain(read_elem(handle["obs"]), read_elem(handle["var"]).index, np.zeros((0, 0)),
                                           read_elem(handle["uns"]["dataset_id"]) if "uns" in handle
                                           and "dataset_id" in handle["uns"] else None)

    def blocks():
        from anndata.io import sparse_dataset

        with h5py.File(path, "r") as file, tempfile.TemporaryDirectory(prefix="pertnet-layer-") as folder:
            values = file["layers"][layer]
            if not isinstance(values, h5py.Dataset):
                values = sparse_dataset(values)
                values = values if values.format == "csc" else _by_genes(values, Path(folder) / "layer.npy")
            width = tablefile.genes_at_once(len(obs))
            for start in range(0, len(genes), width):
                columns = slice(start, min(start + width, len(genes)))
                block = values[:, columns]
                yield columns, (block.toarray() if hasattr(block, "toarray") else block).astype(np.float32)

    return obs, genes, blocks(), dataset_id


def _by_genes(matrix, file):
    """A CSR matrix on disk as a gene-order pertnet/tablefile.py table in `file`, read a window of rows at a time."""
    rows, genes = matrix.shape
    height = max(1, tablefile.WINDOW_BYTES // (4 * max(1, genes)))
    with tablefile.TableWriter(file, (rows, genes)) as writer:
        for start in range(0, rows, height):
            stop = min(start + height, rows)
            writer.write(slice(start, stop), slice(0, genes), matrix[start:stop].toarray())
    return tablefile.TableFile(file)


def observations(adata, layer=None, source="the AnnData"):
    """(obs frame, genes, float32 values of `layer`, dataset_id or None) of an AnnData in memory. layer: default
    sign_log10_pval where it has that layer, else X."""
    if layer is None and DEFAULT_LAYER not in adata.layers and adata.X is not None:
        values = adata.X
    else:
        layer = layer or DEFAULT_LAYER
        if layer not in adata.layers:
            raise UserError(f"{source}: no layer '{layer}'; layers present: {', '.join(adata.layers) or 'none'}; "
                            "choose one with layer=")
        values = adata.layers[layer]
    return _plain(adata.obs, adata.var_names, values, adata.uns.get("dataset_id"))


def _plain(obs, genes, values, dataset_id):
    """obs with plain columns (categories as their values) and a 0..n index, genes as str, dense float32."""
    if hasattr(values, "toarray"):  # a sparse layer
        values = values.toarray()
    categorical = [c for c in obs.columns if isinstance(obs[c].dtype, pd.CategoricalDtype)]
    obs = obs.astype({c: obs[c].cat.categories.dtype for c in categorical}).reset_index(drop=True)
    return obs, [str(g) for g in genes], np.asarray(values, dtype=np.float32), dataset_id


def write_dataset(path, obs, genes, layers, uns):
    """A benchmark-style dataset (schemas.H5AD_TRAIN): obs metadata, var_names = genes, the given layers and uns."""
    import anndata

    first = next(iter(layers.values()))
    adata = anndata.AnnData(X=None, obs=obs.reset_index(drop=True).set_axis(obs.index.astype(str)),
                            var=pd.DataFrame(index=pd.Index(genes, name=None)), shape=first.shape,
                            layers=layers, uns=uns)
    _write(adata, path)


def write_prediction(path, id_map, genes, blocks, dataset_id, level=None, parameters=None):
    """The benchmark's prediction file (schemas.H5AD_PREDICTION) from (rows: a slice, values, their
    `intervals.Bounds` or None) blocks as they come (a stage's `predict_blocks`): anndata writes the file
    without the values, then X, the prediction layer and, with a `level`, the layers lower and upper and obs
    uncertainty are filled block by block, never held whole."""
    with atomic_path(path) as tmp:
        skeleton = prediction(id_map, genes, None, dataset_id, None, parameters)
        if level is not None:
            _add_interval_fields(skeleton.obs, skeleton.uns, np.zeros(len(id_map)), level)
        skeleton.write_h5ad(tmp)
        with h5py.File(tmp, "r+") as file:
            layers = file.require_group("layers")
            layers.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
            names = ("X", "layers/prediction") + (() if level is None else ("layers/lower", "layers/upper"))
            datasets = [file.create_dataset(name, (len(id_map), len(genes)), np.float64) for name in names]
            for dataset in datasets:  # how anndata marks a dense array
                dataset.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
            for rows, values, bounds in blocks:
                arrays = (values, values) + (() if level is None else (bounds.lower, bounds.upper))
                for dataset, block in zip(datasets, arrays):
                    dataset[rows] = block
                if level is not None:
                    file["obs/uncertainty"][rows] = bounds.uncertainty
    return Path(path)


def prediction(id_map, genes, values, dataset_id, bounds=None, parameters=None):
    """The benchmark's prediction AnnData; its spec asks for a double layer, so the float32 predictions
    are widened to float64 (exactly). X holds them too (scanpy's functions read X). obs: the label
    columns as given, indexed by id. bounds (`intervals.Bounds`): also the layers lower and upper, obs
    uncertainty and uns interval_level. parameters: what made the prediction (uns["pertnet"]). values
    None: all of it but X and the prediction layer (`write_prediction` adds them by blocks)."""
    import anndata

    obs = labels.given(id_map).set_axis(id_map["id"].astype(str).rename("id"))
    layers = {} if values is None else {"prediction": np.asarray(values, dtype=np.float64)}
    uns = {"dataset_id": dataset_id or "unknown", "method_id": METHOD_ID, **({"pertnet": parameters} if parameters else {})}
    if bounds is not None:
        layers.update(lower=np.asarray(bounds.lower, np.float64), upper=np.asarray(bounds.upper, np.float64))
        _add_interval_fields(obs, uns, bounds.uncertainty, bounds.level)
    return anndata.AnnData(X=layers.get("prediction"), obs=obs, var=pd.DataFrame(index=pd.Index(genes)),
                           layers=layers, uns=uns, shape=None if values is not None else (len(obs), len(genes)))


def _add_interval_fields(obs, uns, uncertainty, level):
    """Where a prediction with bounds keeps each pair's uncertainty score and the coverage level."""
    obs["uncertainty"] = np.asarray(uncertainty, np.float64)
    uns["interval_level"] = float(level)


def read_interval_fields(path):
    """(obs with cell_type, sm_name and uncertainty, interval_level) of a prediction file with bounds, else None."""
    import anndata

    adata = anndata.read_h5ad(path, backed="r")
    try:
        if not {"lower", "upper"} <= set(adata.layers.keys()):
            return None
        if "uncertainty" not in adata.obs or "interval_level" not in adata.uns:
            raise UserError(f"{path}: has the layers lower and upper but no obs uncertainty or uns interval_level; "
                            "rewrite it with `python -m predict --interval`")
        obs = adata.obs[["cell_type", "sm_name", "uncertainty"]].astype({"cell_type": str, "sm_name": str})
        return obs.reset_index(names="id"), float(adata.uns["interval_level"])
    finally:
        adata.file.close()


def _write(adata, path):
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
