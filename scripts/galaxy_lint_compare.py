"""Compare `planemo lint` findings of our q2galaxy tools with a core plugin's (q2-types).

    python scripts/galaxy_lint_compare.py OURS.txt REFERENCE.txt [OUR_TOOLS_DIR]

Prints the WARNING/ERROR findings by type for both and fails (exit 1) on a type of finding
that only our tools have, on a tool of ours without a Galaxy test, or (given the folder of
our tools) on a test naming a test-data file that q2galaxy did not write. One type is q2galaxy's
own and cannot show in q2-types (whose tools have no tests): TestsCaseValidation for the
section q2galaxy names `__q2galaxy__GUI__section__extra_opts__` (leading underscores), which
every tool with optional parameters and a test gets; it is reported, not failed on.
"""
import collections
import re
import sys
from pathlib import Path

FINDING = re.compile(r"^\.\. (WARNING|ERROR) \((\w+)\): (.*)$")
Q2GALAXY_SECTION = re.compile(r"^Test \d+: failed to validate test parameters against inputs.*"
                              r"Validation errors are \[Fields must not use names with leading "
                              r"underscores; e\.g\., use 'q2galaxy__GUI__section__\w+' instead of "
                              r"'__q2galaxy__GUI__section__\w+'\.\]$")


def findings(path):
    """{tool: [(level, code, message)]} from a planemo lint log."""
    tools, tool = collections.OrderedDict(), None
    with open(path) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("Linting tool "):
                tool = line.rsplit("/", 1)[-1]
                tools[tool] = []
                continue
            found = FINDING.match(line)
            if found and tool is not None:
                tools[tool].append(found.groups())
    return tools


def counts(tools):
    return collections.Counter(f"{level} {code}" for items in tools.values()
                               for level, code, _ in items)


def missing_test_data(tools_dir):
    """Test inputs (`<param ... value="x.qza">`) absent from the suite's test-data/."""
    missing = []
    for xml in sorted(Path(tools_dir).rglob("*.xml")):
        for name in re.findall(r'<param name="[^"]+" value="([^"]+\.qz[av])"', xml.read_text()):
            if not (xml.parent / "test-data" / name).is_file():
                missing.append(f"{xml.name}: test data {name} was never written")
    return missing


def main(ours_path, reference_path, tools_dir=None):
    ours, reference = findings(ours_path), findings(reference_path)
    if not ours:
        print(f"no tool linted in {ours_path}")
        return 1
    ours_counts, ref_counts = counts(ours), counts(reference)
    print(f"{'finding':55} {'ours':>6} {'q2-types':>9}   ({len(ours)} vs {len(reference)} tools)")
    for key in sorted(set(ours_counts) | set(ref_counts)):
        print(f"{key:55} {ours_counts[key]:>6} {ref_counts[key]:>9}")
    reference_codes = {code for items in reference.values() for _, code, _ in items}
    problems, q2galaxy_own = [], 0
    for tool, items in ours.items():
        for level, code, message in items:
            if code == "TestsMissing":
                problems.append(f"{tool}: no Galaxy test (give the action a usage example)")
            elif code == "TestsCaseValidation" and Q2GALAXY_SECTION.match(message):
                q2galaxy_own += 1
            elif code not in reference_codes:
                problems.append(f"{tool}: {level} ({code}): {message}")
    if tools_dir is not None:
        problems.extend(missing_test_data(tools_dir))
    if q2galaxy_own:
        print(f"\n{q2galaxy_own} x TestsCaseValidation on q2galaxy's own section name "
              "'__q2galaxy__GUI__section__extra_opts__' (every tool with optional parameters "
              "and a test; not a plugin finding)")
    if problems:
        print("\nfindings that q2-types' tools do not have:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print("\nno finding beyond those of q2-types' tools; every tool has a test")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
