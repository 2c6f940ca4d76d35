"""refine-taxonomy: teach -> distill -> correct-taxonomy, each step a provenance-tracked action."""


from .engine.parameters import DEFAULTS as D


def refine_taxonomy(ctx, contigs, taxonomy, abundance=None, embeddings=None,
                    teacher=D.teacher, n_neighbours=D.n_neighbours, min_support=D.min_support,
                    alpha=D.alpha, temperature=D.temperature, n_folds=D.n_folds,
                    max_epochs=D.max_epochs, confidence=D.confidence,
                    genome_neighbours=D.genome_neighbours, min_length=D.min_length,
                    seed=D.seed, hits=None, species_identity=D.species_identity,
                    threads=D.threads, reference_taxonomy=None):
    teach = ctx.get_action("taxdistill", "teach")
    distill = ctx.get_action("taxdistill", "distill")
    correct = ctx.get_action("taxdistill", "correct_taxonomy")
    soft_labels, = teach(contigs=contigs, taxonomy=taxonomy, embeddings=embeddings,
                         teacher=teacher, n_neighbours=n_neighbours, min_support=min_support,
                         min_length=min_length, seed=seed)
    student, = distill(contigs=contigs, taxonomy=taxonomy, soft_labels=soft_labels,
                       abundance=abundance, alpha=alpha, temperature=temperature,
                       n_folds=n_folds, max_epochs=max_epochs, min_support=min_support,
                       min_length=min_length, seed=seed, threads=threads)
    corrected, = correct(student=student, contigs=contigs, abundance=abundance,
                         taxonomy=taxonomy, confidence=confidence,
                         genome_neighbours=genome_neighbours, min_support=min_support,
                         min_length=min_length, hits=hits, species_identity=species_identity,
                         reference_taxonomy=reference_taxonomy)
    return soft_labels, student, corrected
