"""The BraTS releases as data: how each one names its files and which label values it writes (notebook 01).

| release | a case | its files | labels |
|---|---|---|---|
| BraTS 2018-2020 | ``BraTS20_Training_001`` | ``<case>_{t1,t1ce,t2,flair,seg}.nii[.gz]`` | 1 NCR, 2 ED, 4 ET |
| BraTS 2021 | ``BraTS2021_00000`` | ``<case>_{t1,t1ce,t2,flair,seg}.nii.gz`` | 1 NCR, 2 ED, 4 ET |
| BraTS 2023 GLI | ``BraTS-GLI-00000-000`` | ``<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz`` | 1 NETC, 2 SNFH, 3 ET |

Inside the course there is one convention: modalities t1, t1ce, t2, flair (in that order) and the BraTS 2018-2021
labels 0/1/2/4 (``INTERNAL_LABELS``). ``io.find_cases`` recognises the release of every case (``CaseFiles.release``),
``io.load_case`` maps its modalities and labels into the internal convention, and ``predict`` writes labels back in
the release's own (a BraTS 2023 user gets 3 for ET).

BraTS 2021 and 2018-2020 differ only by their case ids; BraTS 2023 renamed the sequences (t1n native T1, t1c T1 with
contrast, t2w T2, t2f T2-FLAIR) and writes enhancing tumour as 3. The BraTS 2023 glioma training set holds the BraTS
2021 patients under new ids (``BraTS2021_00000`` is ``BraTS-GLI-00000-000``: checked on the two samples in
``shared/data``; ``counterpart_id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from braintools.data.labels import BRATS2020, BRATS2023, LabelConvention

if TYPE_CHECKING:
    import pandas as pd

COURSE_MODALITIES = ("t1", "t1ce", "t2", "flair")  # the course's names, in the order of every image array
INTERNAL_LABELS = BRATS2020  # the labels every loaded segmentation has inside the course (ET = 4)
SEG = "seg"


@dataclass(frozen=True)
class Release:
    """How one BraTS release names its cases and files, and which labels it writes.

    Attributes:
        key: short name, the value of ``synthesize --release`` (``"2020"``, ``"2021"``, ``"2023"``).
        name: what messages call it (``"BraTS 2023 GLI"``).
        case_pattern: regular expression of its case ids.
        example: one case id.
        separator: between the case id and the modality in a file name (``_`` or ``-``).
        modality_files: the file name's modality for each course modality, in course order (t1, t1ce, t2, flair).
        labels: its label values (``labels.LabelConvention``).
        label_meanings: what each non-zero label value means in this release.
        extension: the extension its files have in the download (``.nii`` on Kaggle's BraTS 2020, else ``.nii.gz``).
    """

    key: str
    name: str
    case_pattern: str
    example: str
    separator: str
    modality_files: tuple[str, str, str, str]
    labels: LabelConvention
    label_meanings: tuple[tuple[int, str], ...]
    extension: str = ".nii.gz"

    @property
    def file_modality(self) -> dict[str, str]:
        """Course modality -> the modality written in this release's file names, e.g. ``{"t1": "t1n", ...}``."""
        return dict(zip(COURSE_MODALITIES, self.modality_files))

    def file_name(self, case_id: str, kind: str, extension: str | None = None) -> str:
        """The file name of a course modality (``"t1ce"``) or of ``"seg"`` in this release's naming.

        Example:
            >>> BRATS_2023.file_name("BraTS-GLI-00000-000", "t1ce")
            'BraTS-GLI-00000-000-t1c.nii.gz'
        """
        token = SEG if kind == SEG else self.file_modality[kind]
        return f"{case_id}{self.separator}{token}{self.extension if extension is None else extension}"

    def naming(self) -> str:
        """The file names of a case, e.g. ``<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz``."""
        return f"<case>{self.separator}{{{','.join(self.modality_files)},{SEG}}}{self.extension}"

    def describe(self) -> str:
        """One line: the release, its file names and its labels."""
        meanings = ", ".join(f"{value} {meaning.split(':')[0]}" for value, meaning in self.label_meanings)
        return f"{self.name}: {self.naming()}, labels {meanings}"


BRATS_2018_2020 = Release(
    key="2020", name="BraTS 2018-2020", case_pattern=r"(?i)^(brats(17|18|19|20)_.+)$", example="BraTS20_Training_001",
    separator="_", modality_files=("t1", "t1ce", "t2", "flair"), labels=BRATS2020, extension=".nii",
    label_meanings=((1, "NCR/NET: necrotic and non-enhancing tumour core"), (2, "ED: peritumoral edema"),
                    (4, "ET: GD-enhancing tumour")))
BRATS_2021 = Release(
    key="2021", name="BraTS 2021", case_pattern=r"(?i)^brats2021_\d+$", example="BraTS2021_00000", separator="_",
    modality_files=("t1", "t1ce", "t2", "flair"), labels=BRATS2020,
    label_meanings=((1, "NCR: necrotic tumour core"), (2, "ED: peritumoral edema"), (4, "ET: GD-enhancing tumour")))
BRATS_2023 = Release(
    key="2023", name="BraTS 2023 GLI", case_pattern=r"(?i)^brats-[a-z]+-\d+-\d+$", example="BraTS-GLI-00000-000",
    separator="-", modality_files=("t1n", "t1c", "t2w", "t2f"), labels=BRATS2023,
    label_meanings=((1, "NETC: non-enhancing tumour core"),
                    (2, "SNFH: surrounding non-enhancing FLAIR hyperintensity (edema)"), (3, "ET: enhancing tumour")))
RELEASES = {release.key: release for release in (BRATS_2018_2020, BRATS_2021, BRATS_2023)}

_MODALITY_OF_TOKEN = {token: modality for release in RELEASES.values()
                      for modality, token in release.file_modality.items()}  # "t1c" -> "t1ce", "t1ce" -> "t1ce"
_MODERN_TOKENS = frozenset(BRATS_2023.modality_files)  # only BraTS 2023 writes these
_KINDS = "|".join(sorted([*_MODALITY_OF_TOKEN, SEG], key=len, reverse=True))
FILE_NAME = re.compile(rf"^(?P<case>.+?)[_-](?P<kind>{_KINDS})\.nii(?:\.gz)?$", re.IGNORECASE)


def get_release(key: str | Release) -> Release:
    """The release of a key (``"2020"``, ``"2021"``, ``"2023"``, or a full year such as ``"2019"``).

    Example:
        >>> get_release("2023").labels.et
        3
    """
    if isinstance(key, Release):
        return key
    text = str(key).strip()
    if text in ("2018", "2019"):
        text = "2020"
    if text not in RELEASES:
        raise ValueError(f"unknown BraTS release {key!r}; choose one of {', '.join(RELEASES)}")
    return RELEASES[text]


def parse_file_name(name: str) -> tuple[str, str, str] | None:
    """``(case id, course modality or "seg", file token)`` of a BraTS file name in any release's naming, or None.

    Example:
        >>> parse_file_name("BraTS-GLI-00000-000-t2f.nii.gz")
        ('BraTS-GLI-00000-000', 'flair', 't2f')
    """
    match = FILE_NAME.match(name)
    if match is None:
        return None
    token = match["kind"].lower()
    return match["case"], (SEG if token == SEG else _MODALITY_OF_TOKEN[token]), token


def recognise(case_id: str, file_names: Iterable[str]) -> Release:
    """The release of one case from its id and its files' names; ``ValueError`` when they mix two namings.

    The modality names decide first (t1n/t1c/t2w/t2f: BraTS 2023; t1/t1ce/t2/flair: BraTS 2021 for a ``BraTS2021_``
    id, else BraTS 2018-2020, which has the same names and labels). A segmentation alone is told by its case id
    (``BraTS-GLI-...``, ``BraTS2021_...``) or its separator (``<case>-seg``: BraTS 2023).

    Example:
        >>> recognise("BraTS2021_00000", ["BraTS2021_00000_t1.nii.gz"]).name
        'BraTS 2021'
    """
    names = list(file_names)
    tokens = {name: parsed[2] for name in names if (parsed := parse_file_name(name)) and parsed[1] != SEG}
    modern = sorted(name for name, token in tokens.items() if token in _MODERN_TOKENS)
    older = sorted(name for name, token in tokens.items() if token not in _MODERN_TOKENS)
    if modern and older:
        raise ValueError(f"case {case_id} mixes BraTS 2018-2021 file names ({', '.join(older)}) and BraTS 2023 "
                         f"names ({', '.join(modern)}); keep one naming per case")
    if modern:
        return BRATS_2023
    if older:
        return BRATS_2021 if re.match(BRATS_2021.case_pattern, case_id) else BRATS_2018_2020
    # a segmentation alone (e.g. a folder of ground truth): the case id, then the separator
    if re.match(BRATS_2023.case_pattern, case_id) or any(name[len(case_id):].startswith("-") for name in names):
        return BRATS_2023
    return BRATS_2021 if re.match(BRATS_2021.case_pattern, case_id) else BRATS_2018_2020


def counterpart_id(case_id: str, release: str | Release) -> str | None:
    """The id of the same BraTS 2021 patient in another release's naming (2021 <-> 2023 GLI), or None.

    Example:
        >>> counterpart_id("BraTS2021_00002", "2023"), counterpart_id("BraTS-GLI-00002-000", "2021")
        ('BraTS-GLI-00002-000', 'BraTS2021_00002')
    """
    target = get_release(release)
    number = re.match(r"(?i)^brats2021_(\d{5})$", case_id) or re.match(r"(?i)^brats-gli-(\d{5})-000$", case_id)
    if number is None or target is BRATS_2018_2020:
        return None
    return f"BraTS2021_{number[1]}" if target is BRATS_2021 else f"BraTS-GLI-{number[1]}-000"


def describe_releases(cases: Iterable) -> str:
    """How many cases of each release a list holds (anything with a ``release``, e.g. ``io.CaseFiles``) (notebook 01).

    Example:
        >>> from types import SimpleNamespace
        >>> describe_releases([SimpleNamespace(release=BRATS_2023)] * 2 + [SimpleNamespace(release=BRATS_2021)])
        '1 BraTS 2021, 2 BraTS 2023 GLI'
    """
    counts = {release.name: 0 for release in RELEASES.values()}
    for case in cases:
        counts[case.release.name] += 1
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count) or "no case"


def expected_names() -> str:
    """What a case's files may be called, for messages: the namings of the releases, one after the other."""
    older = f"<case>_{{{','.join(COURSE_MODALITIES)},{SEG}}}.nii[.gz] (BraTS 2018-2021)"
    return f"{older} or <case>-{{{','.join(BRATS_2023.modality_files)},{SEG}}}.nii[.gz] (BraTS 2023)"


def release_table() -> pd.DataFrame:
    """One row per release: an example case, its file names, each course modality's file and the labels (notebook 01).

    Example:
        >>> release_table().loc["BraTS 2023 GLI", "T1ce"]
        't1c'
    """
    import pandas as pd  # here: io imports this module, and reading a case needs no pandas

    rows = {}
    for release in RELEASES.values():
        row = {"case id, e.g.": release.example, "files": release.naming()}
        row.update({modality.upper() if modality != "t1ce" else "T1ce": token
                    for modality, token in release.file_modality.items()})
        meanings = ", ".join(f"{value} {meaning.split(':')[0]}" for value, meaning in release.label_meanings)
        row.update({"label values": "/".join(str(value) for value in release.labels.values), "meaning": meanings})
        rows[release.name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "release"
    return table
