from setuptools import find_packages, setup

setup(
    name="q2-taxdistill",
    version="0.1.0",
    description="QIIME 2 plugin: correct noisy contig taxonomy by distilling a "
                "genomic language model into a small composition + abundance student.",
    license="BSD-3-Clause",
    packages=find_packages(exclude=["tests", "tests.*"]),
    python_requires=">=3.9",
    install_requires=["numpy", "pandas", "scipy", "torch", "safetensors", "faiss-cpu"],
    extras_require={"teacher": ["transformers", "tokenizers"], "cluster": ["parsl"]},
    package_data={
        "q2_taxdistill": ["citations.bib", "assets/*.html", "data/example/*",
                          "data/example/kraken2/*"],
    },
    entry_points={"qiime2.plugins": ["q2-taxdistill=q2_taxdistill.plugin_setup:plugin"]},
    zip_safe=False,
)
