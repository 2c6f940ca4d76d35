import gzip

import numpy as np
import pytest

from q2_taxdistill.engine.errors import InputError
from q2_taxdistill.engine.sequences import Contigs, clean_sequence, read_fasta

FASTA = ">c1 some description\nACGTacgt\nNNRY\n\n>c2\n  ACG T-.\n>c3\tx\nGGGG\n"


def _write(tmp_path, text, name="x.fna", gz=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_read_fasta_ids_and_uppercase(tmp_path):
    records = list(read_fasta(_write(tmp_path, FASTA)))
    assert records == [("c1", "ACGTACGTNNRY"), ("c2", "ACGT-."), ("c3", "GGGG")]


def test_gzip_detected_by_content_not_extension(tmp_path):
    plain = list(read_fasta(_write(tmp_path, FASTA, "a.fna")))
    # gzip bytes under a plain name, and plain bytes under a .gz name
    gz_misnamed = list(read_fasta(_write(tmp_path, FASTA, "b.fna", gz=True)))
    plain_misnamed = list(read_fasta(_write(tmp_path, FASTA, "c.fna.gz")))
    assert plain == gz_misnamed == plain_misnamed
    assert Contigs.from_fasta(tmp_path / "a.fna") == Contigs.from_fasta(tmp_path / "b.fna")


def test_read_fasta_is_lazy(tmp_path):
    path = _write(tmp_path, ">a\nAC\n>b\nGT\nthis is not reached\n")
    gen = read_fasta(path)
    assert next(gen) == ("a", "AC")


def test_not_fasta_names_path_and_line(tmp_path):
    path = _write(tmp_path, "\n\nfeature-id\tS1\nc1\t3\n", "table.tsv")
    with pytest.raises(InputError, match=r"table\.tsv is not a FASTA file: line 3"):
        list(read_fasta(path))


def test_header_without_id(tmp_path):
    with pytest.raises(InputError, match="line 3"):
        list(read_fasta(_write(tmp_path, ">a\nAC\n>  \nGT\n")))


def test_clean_sequence():
    assert clean_sequence("acgtRYKMSWBDHVN-.*uU") == "ACGT" + "N" * 16
    assert clean_sequence("ACGTé") == "ACGTN"
    assert clean_sequence("") == ""


def test_contigs_cleaned_lengths_and_lookup(tmp_path):
    contigs = Contigs.from_fasta(_write(tmp_path, FASTA))
    assert contigs.ids == ["c1", "c2", "c3"]
    assert contigs.sequences == ["ACGTACGTNNNN", "ACGTNN", "GGGG"]
    assert contigs.lengths.dtype == np.int64
    assert contigs.lengths.tolist() == [12, 6, 4]
    assert len(contigs) == 3 and "c2" in contigs and "zz" not in contigs
    assert contigs.index_of("c3") == 2
    assert contigs.indices(["c3", "c1"]).tolist() == [2, 0]
    assert contigs.lengths_series().to_dict() == {"c1": 12, "c2": 6, "c3": 4}
    with pytest.raises(InputError, match="'zz'"):
        contigs.index_of("zz")


def test_subset_preserves_requested_order():
    contigs = Contigs.from_pairs([("a", "A"), ("b", "CC"), ("c", "GGG")])
    sub = contigs.subset(["c", "a"])
    assert sub.ids == ["c", "a"] and sub.sequences == ["GGG", "A"]
    with pytest.raises(InputError, match=r"2 of the requested IDs.*'x', 'y'"):
        contigs.subset(["a", "x", "y"])


def test_duplicate_ids_named(tmp_path):
    path = _write(tmp_path, ">a\nA\n>b\nC\n>a\nG\n>c\nT\n>b\nA\n>a\nC\n")
    with pytest.raises(InputError) as err:
        Contigs.from_fasta(path)
    message = str(err.value)
    assert str(path) in message and "2 duplicated contig ID(s): 'a', 'b'" in message


def test_empty_input_and_empty_sequence(tmp_path):
    with pytest.raises(InputError, match="contains no sequences"):
        Contigs.from_fasta(_write(tmp_path, "\n\n"))
    with pytest.raises(InputError, match="empty sequence: 'b'"):
        Contigs.from_pairs([("a", "AC"), ("b", "")])


def test_mismatched_lengths():
    with pytest.raises(InputError, match="2 contig IDs but 1 sequences"):
        Contigs(["a", "b"], ["A"])


def test_streamed_contigs_match_in_memory(tmp_path):
    path = _write(tmp_path, FASTA, gz=True)
    memory, streamed = Contigs.from_fasta(path), Contigs.from_fasta(path, stream=True)
    assert streamed.streamed and not memory.streamed
    assert streamed.ids == memory.ids
    assert streamed.lengths.tolist() == memory.lengths.tolist() == [12, 6, 4]
    assert list(streamed.iter_sequences()) == memory.sequences == streamed.sequences
    assert streamed == memory


def test_streamed_subset_stays_streamed_in_file_order(tmp_path):
    streamed = Contigs.from_fasta(_write(tmp_path, FASTA), stream=True)
    ordered = streamed.subset(["c1", "c3"])
    assert ordered.streamed and ordered.ids == ["c1", "c3"]
    assert list(ordered.iter_sequences()) == ["ACGTACGTNNNN", "GGGG"]
    again = ordered.subset(["c3"])
    assert again.streamed and list(again.iter_sequences()) == ["GGGG"]
    reordered = streamed.subset(["c3", "c1"])
    assert not reordered.streamed and reordered.sequences == ["GGGG", "ACGTACGTNNNN"]


def test_streamed_validation_and_changed_file(tmp_path):
    with pytest.raises(InputError, match="duplicated contig ID.*'a'"):
        Contigs.from_fasta(_write(tmp_path, ">a\nAC\n>a\nGT\n", "d.fna"), stream=True)
    with pytest.raises(InputError, match="empty sequence.*'b'"):
        Contigs.from_fasta(_write(tmp_path, ">a\nAC\n>b\n>c\nGT\n", "e.fna"), stream=True)
    path = _write(tmp_path, ">a\nAC\n>b\nGT\n", "f.fna")
    streamed = Contigs.from_fasta(path, stream=True)
    path.write_text(">z\nAC\n>b\nGT\n")
    with pytest.raises(InputError, match="changed while it was being read"):
        list(streamed.iter_sequences())
