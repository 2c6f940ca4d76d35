"""One source per parameter: the engine's table, the QIIME 2 signatures and the engine checks."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from q2_taxdistill.engine import workflow
from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.mags import classify_mags
from q2_taxdistill.engine.parameters import DEFAULTS, PARAMETERS, check
from q2_taxdistill.engine.student import StudentConfig
from q2_taxdistill.plugin_setup import _qiime_type, plugin

SOURCE = Path(__file__).resolve().parent.parent / "q2_taxdistill"


def test_every_action_takes_type_range_default_and_help_from_the_engine():
    seen = set()
    for action in plugin.actions.values():
        for name, spec in action.signature.parameters.items():
            if name not in PARAMETERS:
                continue
            seen.add(name)
            assert spec.default == PARAMETERS[name].default, (action.id, name)
            assert spec.qiime_type == _qiime_type(PARAMETERS[name]), (action.id, name)
            assert spec.description == PARAMETERS[name].description, (action.id, name)
    assert seen == set(PARAMETERS)


def test_no_default_is_written_twice_in_the_source():
    for name, p in PARAMETERS.items():
        literal = re.escape(repr(p.default))
        pattern = re.compile(rf"\b{name}\s*(:\s*\w+\s*)?=\s*{literal}(?![\w.])")
        found = [str(f.relative_to(SOURCE)) for f in SOURCE.rglob("*.py")
                 if pattern.search(f.read_text())]
        assert found == [], (name, found)


@pytest.mark.parametrize("call, name", [
    (lambda: StudentConfig(n_folds=1), "n_folds"),
    (lambda: StudentConfig(alpha=1.5), "alpha"),
    (lambda: StudentConfig(patience=0), "patience"),
    (lambda: check(confidence=0.0), "confidence"),
    (lambda: check(species_identity=101.0), "species_identity"),
    (lambda: check(device="tpu"), "device"),
    (lambda: check(min_length=2.5), "min_length"),
    (lambda: classify_mags(pd.DataFrame({"Taxon": ["d__B"]}, index=["c"]),
                           pd.Series({"c": 1000}), pd.Series({"c": "m"}), majority=1.0),
     "majority"),
])
def test_engine_calls_out_of_range_name_the_parameter(call, name):
    with pytest.raises(InputError, match=rf"^{name} must be"):
        call()


def test_workflow_steps_check_their_parameters(example):
    with pytest.raises(InputError, match="^n_neighbours must be an integer in \\[1, inf\\); got 0"):
        workflow.teach(example["contigs"], example["taxonomy"], n_neighbours=0)
    with pytest.raises(InputError, match="^min_support must be"):
        workflow.distill(example["contigs"], example["taxonomy"], None, min_support=-0.1)
    with pytest.raises(InputError, match="^genome_neighbours must be"):
        workflow.correct(None, example["contigs"], n_neighbours=-1)


def test_defaults_pass_their_own_checks():
    for name, p in PARAMETERS.items():
        p.check(name, p.default)
        assert getattr(DEFAULTS, name) == p.default
    assert np.isfinite(DEFAULTS.species_identity)
