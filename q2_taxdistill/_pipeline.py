"""refine-taxonomy: teach -> distill -> correct-taxonomy, each step a provenance-tracked action."""


def refine_taxonomy(ctx, contigs, taxonomy, abundance=None, embeddings=None,
                    teacher="composition", n_neighbours=50, min_support=0.0, alpha=0.5,
                    temperature=2.0, n_folds=5, max_epochs=25, confidence=0.7,
                    genome_neighbours=20, min_length=1000, seed=0, hits=None,
                    species_identity=95.0):
    teach = ctx.get_action("taxdistill", "teach")
    distill = ctx.get_action("taxdistill", "distill")
    correct = ctx.get_action("taxdistill", "correct_taxonomy")
    soft_labels, = teach(contigs=contigs, taxonomy=taxonomy, embeddings=embeddings,
                         teacher=teacher, n_neighbours=n_neighbours, min_support=min_support,
                         min_length=min_length, seed=seed)
    student, = distill(contigs=contigs, taxonomy=taxonomy, soft_labels=soft_labels,
                       abundance=abundance, alpha=alpha, temperature=temperature,
                       n_folds=n_folds, max_epochs=max_epochs, min_support=min_support,
                       min_length=min_length, seed=seed)
    corrected, = correct(student=student, contigs=contigs, abundance=abundance,
                         taxonomy=taxonomy, confidence=confidence,
                         genome_neighbours=genome_neighbours, min_support=min_support,
                         min_length=min_length, hits=hits, species_identity=species_identity)
    return soft_labels, student, corrected
