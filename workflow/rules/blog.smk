# The blog post "How to visualize training dynamics in neural networks" (Hu et al.
# 2025) on one run of one setting (config "blog"): loss curves, PCA of per-example
# validation losses, the HMM of the analysis stage decoded on that run, a summary.
# When the run memorises and generalises is one table (phase_events.csv) that the
# curves and the summary read.


if BLOG and "convergence_threshold" not in ANALYSED.get(BLOG["setting"], {}):
    raise ValueError(
        f"config blog.setting = {BLOG['setting']!r} is not a setting or experiment with "
        f"a convergence_threshold (known: {sorted(ANALYSED)})"
    )


if BLOG:
    # What every blog figure is made from (trainmap.figures.blog2025.Label fields).
    BLOG_LABEL = {
        "title": analysed(BLOG["setting"])["title"],
        "scale": config["scale"],
        "run": BLOG["run"],
    }

    rule blog_pca:
        input:
            **blog_inputs("metrics"),
        output:
            **BLOG_PCA,
        log:
            "logs/blog/pca.log",
        benchmark:
            "results/benchmarks/blog/pca.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_pca.py"),
            blog=blog_params(
                "run", "examples", "components", "turn_window", "turn_min_step"
            ),
        script:
            "../scripts/blog_pca.py"

    rule blog_phases:
        input:
            **blog_inputs("metrics"),
        output:
            f"{BLOG_DIR}/phase_events.csv",
        log:
            "logs/blog/phases.log",
        benchmark:
            "results/benchmarks/blog/phases.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_phases.py"),
            blog=blog_params("run", "memorised_acc", "generalising_acc"),
            convergence=analysed(BLOG["setting"])["convergence_threshold"],
        script:
            "../scripts/blog_phases.py"

    rule blog_loss_curves:
        input:
            **blog_inputs("metrics"),
            events=rules.blog_phases.output[0],
        output:
            loss_curve=blog_report("loss_curve.png"),
            run_curves=blog_report("pca_loss_curve.png"),
        log:
            "logs/blog/loss_curves.log",
        benchmark:
            "results/benchmarks/blog/loss_curves.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_loss_curves.py"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_loss_curves.py"

    rule blog_pca_figures:
        input:
            **BLOG_PCA,
        output:
            pca_html=blog_report("pca.html"),
            pca_png=blog_report("pca.png"),
            curve_html=blog_report("pca_training_curve.html"),
            curve_png=blog_report("pca_training_curve.png"),
        log:
            "logs/blog/pca_figures.log",
        benchmark:
            "results/benchmarks/blog/pca_figures.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_pca_figures.py"),
            blog=blog_params("examples"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_pca_figures.py"

    rule blog_hmm_figures:
        input:
            **blog_inputs("metrics", "states", "model", "edges"),
        output:
            curve_html=blog_report("hmm_training_curve.html"),
            curve_png=blog_report("hmm_training_curve.png"),
            graph=blog_report("graph.png"),
        log:
            "logs/blog/hmm_figures.log",
        benchmark:
            "results/benchmarks/blog/hmm_figures.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_hmm_figures.py"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_hmm_figures.py"

    rule blog_summary:
        input:
            **blog_inputs("metrics", "states", "model"),
            events=rules.blog_phases.output[0],
            variance=BLOG_PCA["variance"],
            turn=BLOG_PCA["turn"],
        output:
            blog_report("summary.md"),
        log:
            "logs/blog/summary.log",
        benchmark:
            "results/benchmarks/blog/summary.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_summary.py"),
            blog=blog_params("examples", "coincide_tolerance"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_summary.py"
