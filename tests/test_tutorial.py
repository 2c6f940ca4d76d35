"""The README tutorial, run as written (through q2cli) on the bundled example data."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QIIME = Path(sys.executable).parent / "qiime"


def tutorial_block():
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- tutorial:start -->\s*```bash\n(.*?)```\s*<!-- tutorial:end -->",
                      text, re.S)
    assert found, "README.md has no tutorial block between the tutorial markers"
    return found.group(1)


@pytest.mark.skipif(not QIIME.exists() or shutil.which("biom") is None,
                    reason="needs the venv's qiime wrapper and the biom CLI (make test)")
def test_readme_tutorial_runs(tmp_path):
    env = dict(os.environ, Q=str(QIIME), OUT=str(tmp_path / "out"),
               DATA=str(ROOT / "q2_taxdistill" / "data" / "example"),
               CONDA_PREFIX=str(QIIME.parent.parent))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", tutorial_block()], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("soft.qza", "student.qza", "corrected.qza", "soft.qzv", "evaluation.qzv",
                 "taxa-barplot.qzv", "genus-table.qza", "genus-table/feature-table.biom",
                 "kraken2-taxonomy.qza"):
        assert (out / name).stat().st_size > 0, name
    corrected = (out / "corrected" / "taxonomy.tsv").read_text().splitlines()
    ids = [line[1:].split()[0] for line in open(ROOT / "q2_taxdistill/data/example/contigs.fna")
           if line.startswith(">")]
    contigs = len(ids)
    assert corrected[0].split("\t")[:3] == ["Feature ID", "Taxon", "Confidence"]
    assert len(corrected) - 1 == contigs
    # refine-taxonomy through q2cli names every contig once (the one full q2cli run of it)
    assert sorted(line.split("\t")[0] for line in corrected[1:]) == sorted(ids)

    import pandas as pd
    import qiime2
    genus = qiime2.Artifact.load(str(out / "genus-table.qza")).view(pd.DataFrame)
    counts = pd.read_csv(ROOT / "q2_taxdistill/data/example/counts.tsv", sep="\t", index_col=0)
    assert genus.to_numpy().sum() == counts.to_numpy().sum()  # every read lands in a genus row
    assert len(genus.columns) < len(counts)
    kraken2 = qiime2.Artifact.load(str(out / "kraken2-taxonomy.qza"))
    assert str(kraken2.type) == "FeatureData[Taxonomy]"
    assert len(kraken2.view(pd.DataFrame)) == contigs
