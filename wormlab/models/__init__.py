"""Shipped trained models (issue 19): ``data/models/<name>/`` = safetensors + manifest.

>>> from wormlab import models
>>> models.list()                                   # one row per shipped model
>>> tensors, manifest = models.load("body_surrogate", kind="body.surrogate", config=cfg)
>>> models.verify("body_surrogate")                 # recompute the headline metric
"""

from wormlab.models._registry import (
    VERIFIERS,
    VERIFY_REPORT,
    ModelError,
    VerifySkipped,
    check_file,
    checked_path,
    current_code_version,
    exists,
    failed,
    json_tensor,
    load,
    manifest,
    model_path,
    models_dir,
    read_heldout,
    register_verifier,
    save,
    ship_checkpoint,
    tensor_json,
    verify,
    verify_table_html,
    write_heldout,
)
from wormlab.models._registry import list_models as list  # noqa: A001 - the API the issue names

list_models = list

__all__ = ["VERIFIERS", "VERIFY_REPORT", "ModelError", "VerifySkipped", "check_file",
           "checked_path", "current_code_version", "exists", "failed", "list", "list_models",
           "json_tensor", "load", "manifest", "model_path", "models_dir", "register_verifier", "save",
           "read_heldout", "ship_checkpoint", "tensor_json", "verify", "verify_table_html", "write_heldout"]
