"""The plugin through QIIME 2: usage examples (Artifact API), q2cli, and user-facing errors."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import qiime2
from qiime2.plugin.testing import TestPluginBase

from tests.conftest import example_path


class UsageExamples(TestPluginBase):
    package = "q2_taxdistill"

    def test_examples(self):
        self.execute_examples()


def test_each_action_has_examples_that_run_only_that_action():
    """q2galaxy turns each example into one Galaxy test of one tool: an example that ran
    other actions first would name their outputs and inputs there."""
    from qiime2.sdk.usage import DiagnosticUsage

    class Recorder(DiagnosticUsage):
        def action(self, action, inputs, outputs):
            self.called.append(action.action_id)
            return super().action(action, inputs, outputs)

    plugin = qiime2.sdk.PluginManager().plugins["taxdistill"]
    for action_id, action in plugin.actions.items():
        assert action.examples, f"{action_id} has no usage example"
        for name, example in action.examples.items():
            use = Recorder()
            use.called = []
            example(use)
            assert use.called == [action_id], (name, use.called)


def _qiime():
    venv_qiime = Path(sys.executable).with_name("qiime")
    return str(venv_qiime) if venv_qiime.exists() else shutil.which("qiime")


@pytest.mark.skipif(_qiime() is None, reason="q2cli is not installed")
def test_a_missing_teacher_through_q2cli_is_an_error_without_a_traceback(tmp_path):
    """refine-taxonomy itself runs through q2cli in tests/test_tutorial.py (the README tutorial,
    `qiime tools import` included) and in tests/test_inputs.py (five contigs): each q2cli start
    loads every plugin (seconds), so this one starts it once."""
    env = dict(os.environ, CONDA_PREFIX=str(Path(sys.executable).parent.parent))
    qiime = _qiime()
    qiime2.Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna")).save(
        str(tmp_path / "contigs.qza"))
    qiime2.Artifact.import_data("FeatureData[Taxonomy]", example_path("taxonomy.tsv")).save(
        str(tmp_path / "taxonomy.qza"))
    failed = subprocess.run([qiime, "taxdistill", "teach", "--i-contigs", "contigs.qza",
                             "--i-taxonomy", "taxonomy.qza", "--p-teacher", "/no/such/model",
                             "--o-soft-labels", "x.qza"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert failed.returncode != 0
    assert "/no/such/model" in failed.stderr and "Traceback" not in failed.stderr


def test_student_on_other_samples_is_a_clear_error(example_student):
    """The student is the suite's shared one (trained with the example's samples S1...)."""
    from qiime2.plugins import taxdistill
    contigs = qiime2.Artifact.import_data("FeatureData[Sequence]", example_path("contigs.fna"))
    counts = pd.read_csv(example_path("counts.tsv"), sep="\t", index_col=0).astype(float)
    student = qiime2.Artifact.import_data("StudentModel", example_student)
    other = qiime2.Artifact.import_data("FeatureTable[Frequency]",
                                        counts.T.rename(index={"S1": "elsewhere"}))
    with pytest.raises(ValueError, match="other samples.*elsewhere"):
        taxdistill.actions.correct_taxonomy(student=student, contigs=contigs, abundance=other)
