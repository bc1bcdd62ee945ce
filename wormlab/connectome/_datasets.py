"""Registry of connectome datasets offered through ``cect`` (all read offline from its cache)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    reader: str  # module under cect.readers exposing get_instance(from_cache=True)
    citation: str
    has_wiring: bool = True
    has_transmitters: bool = False


_WITVLIET = "Witvliet et al. 2021, Nature 596:257 (developmental series, dataset {k}{adult})"

DATASETS: dict[str, DatasetInfo] = {
    "cook2019": DatasetInfo(
        "cook2019", "Cook2019HermReader",
        "Cook et al. 2019, Nature 571:63, hermaphrodite whole-animal connectome",
    ),
    "white1986": DatasetInfo(
        "white1986", "White_whole",
        "White et al. 1986, Phil. Trans. R. Soc. B 314:1 (whole animal, as curated in cect)",
    ),
    "varshney2011": DatasetInfo(
        "varshney2011", "VarshneyDataReader",
        "Varshney et al. 2011, PLoS Comput. Biol. 7:e1001066",
    ),
    "wang2024": DatasetInfo(
        "wang2024", "Wang2024HermReader",
        "Wang et al. 2024, eLife (neurotransmitter atlas) on Cook et al. 2019 anatomy",
        has_transmitters=True,
    ),
}
for _k in range(1, 9):
    DATASETS[f"witvliet_{_k}"] = DatasetInfo(
        f"witvliet_{_k}", f"WitvlietDataReader{_k}",
        _WITVLIET.format(k=_k, adult=", adult" if _k == 8 else ""),
    )
# Friendly aliases (the adult Witvliet brain is dataset 8).
ALIASES = {"cook": "cook2019", "white": "white1986", "varshney": "varshney2011",
           "witvliet": "witvliet_8", "witvliet2021": "witvliet_8",
           **{f"witvliet2021_{k}": f"witvliet_{k}" for k in range(1, 9)}}
DEFAULT_DATASET = "cook2019"
